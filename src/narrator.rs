//! The narrator: the single doorway every step of a container goes through.
//!
//! A step is announced (with `--explain`), optionally paused on (with
//! `--step`), executed, and its failure turned into an error that names the
//! step. Narration goes to stderr so the container's stdout stays clean.

use crate::error::LabError;
use colored::Colorize;
use std::cell::Cell;
use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;

/// One syscall-sized step of building a container.
pub struct Step<'a> {
    /// The system call, as its man page names it (`chroot`).
    pub syscall: &'static str,
    /// Its key arguments as they are passed (`"/var/lib/container-lab/rootfs"`).
    pub args: &'a str,
    /// One line on why the container needs this step.
    pub why: &'a str,
    /// Where to read more (`chroot(2)`).
    pub man: &'static str,
}

impl Step<'_> {
    /// The error for this step failing with `errno`: it names the syscall
    /// and its target.
    pub fn failed(&self, errno: nix::errno::Errno) -> LabError {
        LabError::StepFailed {
            syscall: self.syscall,
            target: self.args.to_string(),
            errno,
        }
    }
}

pub struct Narrator {
    explain: bool,
    /// Instructor mode: the terminal to wait on for Enter before each step.
    pause: Option<File>,
    /// Who performs the steps: the runtime, or the child it forked.
    actor: Cell<&'static str>,
    /// The runtime's stderr as it was when narration began: the child later
    /// puts the container's own terminal on fd 2 (from ch02), and its steps
    /// must still reach the person watching, at once, not through the
    /// container's terminal once the command runs.
    out: Option<File>,
}

impl Narrator {
    /// `explain` prints each step; `pause` (instructor mode) also waits for
    /// Enter before each step, and implies `explain`.
    ///
    /// Pausing reads the controlling terminal, /dev/tty, never stdin: stdin
    /// belongs to the container's command, and the runtime reading it would
    /// steal the command's input. Without a terminal there is nobody to
    /// press Enter, so that is an error up front.
    pub fn new(explain: bool, pause: bool) -> Result<Narrator, LabError> {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        colored::control::set_override(color);
        let pause = if pause {
            // std opens files close-on-exec: the command never inherits it.
            let tty = File::open("/dev/tty").map_err(|error| LabError::NoTerminal {
                errno: crate::error::errno_of(&error),
            })?;
            Some(tty)
        } else {
            None
        };
        let explain = explain || pause.is_some();
        // A close-on-exec copy: the command never inherits it.
        let out = explain
            .then(|| {
                std::io::stderr()
                    .as_fd()
                    .try_clone_to_owned()
                    .ok()
                    .map(File::from)
            })
            .flatten();
        Ok(Narrator {
            explain,
            pause,
            actor: Cell::new("runtime"),
            out,
        })
    }

    // ANCHOR: step
    /// Announce `step`, wait for Enter in `--step` mode, run it, and turn a
    /// failing errno into an error that names the syscall and its target.
    pub fn run<T>(
        &self,
        step: Step<'_>,
        action: impl FnOnce() -> nix::Result<T>,
    ) -> Result<T, LabError> {
        self.announce(&step);
        action().map_err(|errno| step.failed(errno))
    }
    // ANCHOR_END: step

    /// Like `run`, for a step the runtime takes while the container runs
    /// (waiting for it): announced, never paused on. In `--step` mode the
    /// container's shell now reads the terminal, and the Enter the
    /// instructor presses next belongs to it, not to the runtime.
    pub fn run_unpaused<T>(
        &self,
        step: Step<'_>,
        action: impl FnOnce() -> nix::Result<T>,
    ) -> Result<T, LabError> {
        self.announce_only(&step);
        action().map_err(|errno| step.failed(errno))
    }

    /// Like `run_tool`, for a step whose input is a text a student can
    /// retype (an nftables ruleset for `nft -f`): shown under the step,
    /// before the pause.
    pub fn run_with_input<T>(
        &self,
        step: Step<'_>,
        input: &str,
        action: impl FnOnce() -> Result<T, LabError>,
    ) -> Result<T, LabError> {
        self.announce_only(&step);
        if self.explain {
            let mut out = self.writer();
            for line in input.lines() {
                let _ = writeln!(out, "{:9}   {}", "", line.dimmed());
            }
        }
        self.pause_if_stepping();
        action()
    }

    /// Like `run`, for a step that is not one syscall (a tool the runtime
    /// runs, such as ip(8)) and reports its own error.
    pub fn run_tool<T>(
        &self,
        step: Step<'_>,
        action: impl FnOnce() -> Result<T, LabError>,
    ) -> Result<T, LabError> {
        self.announce(&step);
        action()
    }

    /// Called right after fork: from now on the steps are this process's
    /// (`child`, `init`, `command`), and the narration says so.
    pub fn act_as(&self, actor: &'static str) {
        self.actor.set(actor);
    }

    fn announce(&self, step: &Step<'_>) {
        self.announce_only(step);
        self.pause_if_stepping();
    }

    fn pause_if_stepping(&self) {
        if let Some(tty) = self.pause.as_ref().filter(|_| self.explain) {
            wait_for_enter(tty, &mut self.writer());
        }
    }

    fn announce_only(&self, step: &Step<'_>) {
        if !self.explain {
            return;
        }
        let mut err = self.writer();
        let _ = writeln!(
            err,
            "{} {}({})  {}",
            format!("{:<9}", format!("[{}]", self.actor.get()))
                .bold()
                .cyan(),
            step.syscall.bold(),
            step.args,
            step.man.dimmed()
        );
        let _ = writeln!(err, "{:9} {}", "", step.why.italic());
    }

    /// Where narration goes: the copy of stderr, else stderr itself.
    fn writer(&self) -> Box<dyn Write + '_> {
        match &self.out {
            Some(file) => Box::new(file),
            None => Box::new(std::io::stderr().lock()),
        }
    }

    /// From now on say nothing: a detached container's monitor narrates
    /// while the user's command waits for it, and goes quiet once that
    /// command has returned (its terminal may be gone). The copy of stderr
    /// now points at /dev/null, so no later step can write to it.
    pub fn go_quiet(&self) {
        if let (Some(out), Ok(null)) = (&self.out, std::fs::File::open("/dev/null")) {
            use std::os::fd::AsRawFd;
            // SAFETY: both descriptors are open; dup2 replaces our own copy.
            unsafe { libc::dup2(null.as_raw_fd(), out.as_raw_fd()) };
        }
    }

    /// The descriptors the narrator holds (its copy of stderr, the
    /// terminal it pauses on), which a process that closes everything
    /// else must keep.
    pub fn descriptors(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        [self.out.as_ref(), self.pause.as_ref()]
            .into_iter()
            .flatten()
            .map(AsRawFd::as_raw_fd)
            .collect()
    }

    /// Whether remarks are shown: work done only to narrate (reading
    /// /proc to compare namespaces) is skipped when nobody listens.
    pub fn is_explaining(&self) -> bool {
        self.explain
    }

    /// A remark that is not a syscall (what the child now shares, what
    /// happened to it), shown with `--explain`.
    pub fn note(&self, text: &str) {
        if self.explain {
            let _ = writeln!(self.writer(), "{:9} {}", "", format!("- {text}").yellow());
        }
    }
}

/// Instructor mode: block until Enter. In canonical mode a terminal read
/// returns one line, so one read consumes exactly one Enter.
fn wait_for_enter(mut tty: &File, out: &mut dyn Write) {
    let _ = write!(out, "{:9} {}", "", "press Enter to run this step".dimmed());
    let _ = out.flush();
    let mut line = [0u8; 256];
    let _ = tty.read(&mut line);
}
