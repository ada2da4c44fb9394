//! The shared scenario suite (`gossip_runtime::suite`) on tokio.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use gossip_runtime::suite::Harness;
use gossip_tokio::{Config, Error, Events, Handle, Options};

struct Tokio;

impl Harness for Tokio {
    fn block_on<F: Future>(future: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(future)
    }

    fn start(
        config: Config,
        name: String,
        bind: SocketAddr,
        options: Options,
    ) -> impl Future<Output = Result<(Handle, Events), Error>> {
        gossip_tokio::start_with(config, name, bind, options)
    }

    fn sleep(duration: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(duration)
    }
}

gossip_runtime::scenario_tests!(Tokio);
