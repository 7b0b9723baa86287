//! ch00-process: a plain Unix process, the thing every container starts as.
//!
//! fork(2), execve(2), waitpid(2) and nothing else. The command shares the
//! host's `/`, its process IDs, hostname, users, network and everything
//! else; `--explain` shows exactly that. Each later chapter takes something
//! away from this list.

use clap::Parser;
use container_lab::cli::{self, CommandArgs, NarrationArgs};
use container_lab::error::LabError;
use container_lab::runtime::command;
use container_lab::runtime::process::{self, Launch};
use std::path::Path;

/// Run COMMAND as an ordinary child process: fork, exec, wait.
#[derive(Parser, Debug)]
#[command(
    name = "ch00-process",
    version,
    override_usage = "ch00-process [OPTIONS] [COMMAND [ARG]...]",
    long_about = "Run COMMAND as an ordinary child process: fork(2), execve(2), waitpid(2).\n\n\
        Chapter 00 of container-lab. Nothing is isolated: the command sees the host's /, \
        its processes, hostname, users and network. Use --explain to see each step and \
        what the command shares with the host.",
    after_help = "Examples:\n  \
        ch00-process --explain /bin/sh -c 'echo my pid is $$; hostname'\n  \
        ch00-process ls /\n\n\
        Exit status: the command's own; 125 if the runtime failed, 126 if COMMAND is not \
        executable, 127 if it was not found, 128+N if signal N killed it."
)]
struct Cli {
    #[command(flatten)]
    narration: NarrationArgs,

    #[command(flatten)]
    command: CommandArgs,
}

fn main() {
    let cli: Cli = cli::parse();
    container_lab::run(|| recipe(&cli))
}

// ANCHOR: recipe
fn recipe(cli: &Cli) -> Result<i32, LabError> {
    let narrator = cli.narration.narrator()?;
    // There is no other root yet: the command is looked up on the host.
    let command = command::resolve(Path::new("/"), &cli.command.words())?;
    // fork, then exec in the child with nothing changed in between.
    let child = process::spawn(&narrator, &command, |_| Ok(Launch::Exec))?;
    process::wait(&narrator, child)
}
// ANCHOR_END: recipe
