//! ch08-images: containers made from images (Docker, 2013).
//!
//! ch07 plus: `run` takes an IMAGE, a stack of read-only layers from a
//! content-addressed store, and gives the container a root that is those
//! layers joined by overlayfs under a writable layer of its own; and the
//! image verbs (pull, load, import, images, rmi, image inspect, history,
//! image prune, diff) fill and empty that store.

use clap::{Parser, Subcommand};
use container_lab::cli::{self, LifecycleVerb};
use container_lab::image::verbs::ImageVerb;
use container_lab::runtime::fds;

/// Containers made from images.
#[derive(Parser, Debug)]
#[command(name = "ch08-images", version)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Run a command in a running container: it joins the container's
    /// namespaces and cgroup with setns(2)
    Exec(cli::ExecArgs),
    #[command(flatten)]
    Manage(LifecycleVerb),
    #[command(flatten)]
    Image(ImageVerb),
}

fn main() {
    fds::close_all_above_stdio_except(&[]);
    let cli: Cli = cli::parse();
    container_lab::run(|| match &cli.verb {
        Verb::Exec(exec) => exec.run(),
        Verb::Manage(verb) => verb.run(),
        Verb::Image(verb) => verb.run(),
    })
}
