//! The shared scenario suite (`gossip_runtime::suite`) on smol.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use gossip_runtime::suite::Harness;
use gossip_smol::{Config, Error, Events, Handle, Options};

struct Smol;

impl Harness for Smol {
    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }

    fn start(
        config: Config,
        name: String,
        bind: SocketAddr,
        options: Options,
    ) -> impl Future<Output = Result<(Handle, Events), Error>> {
        gossip_smol::start_with(config, name, bind, options)
    }

    async fn sleep(duration: Duration) {
        smol::Timer::after(duration).await;
    }
}

gossip_runtime::scenario_tests!(Smol);
