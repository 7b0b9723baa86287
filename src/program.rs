//! The program itself: the name it was started as, its command line, and
//! how it ends (the command's exit code, or one error line and a hint).
//! Every binary of the lab ends through `run` or `exit_with_error`.

use crate::error::LabError;
use colored::Colorize;
use std::io::IsTerminal;

/// The name this program was started as (`ch01-chroot`), for messages.
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "container-lab".into())
}

/// The command line this program was started with, quoted for a shell
/// where needed, to show the user what to type again.
pub fn command_line() -> String {
    let words: Vec<String> = std::iter::once(program_name())
        .chain(std::env::args().skip(1))
        .collect();
    shell_words(&words)
}

/// Words joined into one line a shell would split back the same way.
pub fn shell_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|word| shell_quote(word.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quote `word` for sh(1) unless it is made only of safe characters.
fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/-._=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Run a chapter's recipe and exit with its code: the command's own on
/// success, the error's (125/126/127) on failure.
pub fn run(recipe: impl FnOnce() -> Result<i32, LabError>) -> ! {
    match recipe() {
        Ok(code) => std::process::exit(code),
        Err(error) => exit_with_error(&error),
    }
}

/// Print `error` as one line plus a hint, and exit with its code.
pub fn exit_with_error(error: &LabError) -> ! {
    print_error(error);
    std::process::exit(error.exit_code())
}

/// Print `error` as one line plus a hint, and go on (a verb given several
/// containers reports each one it fails on).
pub fn print_error(error: &LabError) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    colored::control::set_override(color);
    crate::say!("{}: {} {}", program_name(), "error:".red().bold(), error);
    if let Some(hint) = error.hint() {
        crate::say!("{}: {} {}", program_name(), "hint:".yellow().bold(), hint);
    }
}

/// `say!` writes one line on stderr, as `eprintln!` does, except that a
/// failed write is let go. Rust ignores SIGPIPE, so once the reader of stderr is
/// gone (`2>&1 | head`) a write returns EPIPE, and `eprintln!` panics on
/// it; a runtime that panicked would end with 101, or abort in a release
/// build, instead of the container's exit code, and an abort skips the
/// cleanup. Nobody is left to read the line anyway.
#[macro_export]
macro_rules! say {
    ($($line:tt)*) => {
        $crate::program::say_line(format_args!($($line)*))
    };
}

/// What `say!` calls.
pub fn say_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Set by SIGINT, SIGTERM or SIGHUP while an [`Interruptible`] is held: a
/// long job (a commit, a bundle's copy) checks it between steps, stops,
/// and removes what it half made on the way out. (SIGKILL cannot be
/// caught: what it interrupts stays behind.)
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a signal asked the program to stop since [`Interruptible::install`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The handlers for a long job's duration; the defaults back when dropped.
pub struct Interruptible;

impl Interruptible {
    pub fn install() -> Interruptible {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        let action = SigAction::new(
            SigHandler::Handler(note_interrupt),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: the handler only stores to an atomic.
            let _ = unsafe { sigaction(signal, &action) };
        }
        Interruptible
    }
}

impl Drop for Interruptible {
    fn drop(&mut self) {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: restoring the default disposition.
            let _ = unsafe { sigaction(signal, &default) };
        }
    }
}
