//! The shared scenario suite (`gossip_runtime::suite`) on async-std.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use gossip_async_std::{Config, Error, Events, Handle, Options};
use gossip_runtime::suite::Harness;

struct AsyncStd;

impl Harness for AsyncStd {
    fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }

    fn start(
        config: Config,
        name: String,
        bind: SocketAddr,
        options: Options,
    ) -> impl Future<Output = Result<(Handle, Events), Error>> {
        gossip_async_std::start_with(config, name, bind, options)
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        async_std::task::sleep(duration)
    }
}

gossip_runtime::scenario_tests!(AsyncStd);
