//! The container's terminal: a session and a pseudo-terminal of its own,
//! never the host's.
//!
//! A process that holds a file descriptor of a terminal can push characters
//! into that terminal's input with ioctl(TIOCSTI), as if they were typed
//! (ioctl_tty(2)). A container handed the user's terminal as its stdin can
//! so type a command into the user's shell, which runs it on the host when
//! the container exits (CVE-2017-5226 in bubblewrap, CVE-2016-7545 in
//! SELinux's sandbox, and runc's `terminal: true` for the same reason).
//! Without CAP_SYS_ADMIN the kernel allows TIOCSTI only on the caller's
//! controlling terminal, so a new session (setsid(2)) closes the hole for a
//! container without that capability, but not for root in chapters 02-04,
//! which still holds it. So from ch02 on the container never gets the host's
//! terminal at all: when the runtime runs on one, it opens a pseudo-terminal
//! pair (pty(7)), gives the container the far end as its controlling
//! terminal, and copies bytes between the two ends itself, as `docker run
//! -t` and runc's console do.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{PtyMaster, grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use nix::unistd::{Pid, dup2, read, setsid, write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The runtime's descriptors 0-2 that are terminals: the container gets the
/// pseudo-terminal in their place.
fn host_terminal_fds() -> Vec<i32> {
    (0..3)
        .filter(|fd| {
            // SAFETY: borrowed for isatty only.
            nix::unistd::isatty(unsafe { BorrowedFd::borrow_raw(*fd) }).unwrap_or(false)
        })
        .collect()
}

// ANCHOR: allocate
/// A pseudo-terminal pair for the container, when the runtime runs on a
/// terminal; `None` when none of its stdin, stdout, stderr is one (pipes and
/// files cannot be typed into, so the container gets them as they are).
pub struct ContainerTerminal {
    master: PtyMaster,
    /// The far end, until the runtime hands it over (None in a monitor
    /// that received only the master).
    pts: Option<OwnedFd>,
    /// Which of fds 0-2 the far end takes the place of in the child.
    replaced: Vec<i32>,
}

/// A pair in place of those of the runtime's fds 0-2 that are terminals.
pub fn allocate(narrator: &Narrator) -> Result<Option<ContainerTerminal>, LabError> {
    let replaced = host_terminal_fds();
    if replaced.is_empty() {
        return Ok(None);
    }
    allocate_in_place_of(narrator, replaced).map(Some)
}

/// Open the pair (posix_openpt(3), O_NOCTTY so the runtime does not adopt
/// it) whose far end takes the place of `replaced` (some of fds 0-2) in the
/// child, terminals or not (`exec -t` asks for one anyway), and start it
/// with the user's settings and window size. The user's keys are copied in
/// only when 0 is among them.
pub fn allocate_in_place_of(
    narrator: &Narrator,
    replaced: Vec<i32>,
) -> Result<ContainerTerminal, LabError> {
    let master = narrator.run(
        Step {
            syscall: "posix_openpt",
            args: "O_RDWR|O_NOCTTY|O_CLOEXEC",
            why: "a terminal of the container's own: the host's must never reach it (TIOCSTI)",
            man: "pty(7)",
        },
        || {
            let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
            grantpt(&master)?;
            unlockpt(&master)?;
            Ok(master)
        },
    )?;
    let name = ptsname_r(&master).map_err(|errno| LabError::StepFailed {
        syscall: "ptsname",
        target: "the new pseudo-terminal".into(),
        errno,
    })?;
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let pts =
        nix::fcntl::open(name.as_str(), flags, nix::sys::stat::Mode::empty()).map_err(|errno| {
            LabError::StepFailed {
                syscall: "open",
                target: name.clone(),
                errno,
            }
        })?;
    // The user's settings and window size, from a terminal they have.
    let terminals = host_terminal_fds();
    if let Some(&host) = replaced.iter().find(|fd| terminals.contains(fd)) {
        // SAFETY: `host` is one of this process's fds 0-2, open for the call.
        let host = unsafe { BorrowedFd::borrow_raw(host) };
        if let Ok(settings) = tcgetattr(host) {
            let _ = tcsetattr(&pts, SetArg::TCSANOW, &settings);
        }
        copy_window_size(host, master.as_fd());
    }
    Ok(ContainerTerminal {
        master,
        pts: Some(pts),
        replaced,
    })
}
// ANCHOR_END: allocate

// ANCHOR: new_session
/// In the child: leave the runtime's session, so that no terminal of the
/// host's is this process's controlling terminal and /dev/tty opens nothing
/// (setsid(2)); then, when there is a container terminal, make it the
/// controlling terminal and put it where the host's terminal was on 0-2.
pub fn enter_new_session(
    narrator: &Narrator,
    terminal: Option<&ContainerTerminal>,
) -> Result<(), LabError> {
    narrator.run(
        Step {
            syscall: "setsid",
            args: "",
            why: "a session of its own: the host's terminal is no longer the controlling one",
            man: "setsid(2)",
        },
        setsid,
    )?;
    match terminal {
        Some(terminal) => make_controlling(narrator, terminal),
        None => Ok(()),
    }
}

/// In a session leader with no controlling terminal: make the far end of
/// `terminal` the controlling one (TIOCSCTTY) and put it on its fds.
fn make_controlling(narrator: &Narrator, terminal: &ContainerTerminal) -> Result<(), LabError> {
    let Some(pts) = &terminal.pts else {
        return Ok(());
    };
    narrator.run(
        Step {
            syscall: "ioctl",
            args: "pts, TIOCSCTTY, 0",
            why: "the container's own pseudo-terminal becomes its controlling terminal",
            man: "ioctl_tty(2)",
        },
        // SAFETY: TIOCSCTTY takes an int argument; the fd is ours.
        || Errno::result(unsafe { libc::ioctl(pts.as_raw_fd(), libc::TIOCSCTTY, 0) }),
    )?;
    for fd in &terminal.replaced {
        let args = format!("pts, {fd}");
        narrator.run(
            Step {
                syscall: "dup2",
                args: &args,
                why: "where the host's terminal was, the container's own",
                man: "dup2(2)",
            },
            || {
                // SAFETY: `fd` is 0, 1 or 2 of this process; dup2 replaces it.
                let mut target = unsafe { OwnedFd::from_raw_fd(*fd) };
                let result = dup2(pts, &mut target);
                std::mem::forget(target); // stays open as fd 0-2
                result
            },
        )?;
    }
    Ok(())
}
// ANCHOR_END: new_session

// ANCHOR: console
/// ch07's `-t`: a pseudo-terminal from the container's own devpts instance
/// (mounted with `newinstance` since ch03), opened by PID 1 itself once its
/// /dev is in place, so that the name inside (`tty`) is one of the
/// container's /dev/pts. Its master goes to the monitor over a socket, as
/// a descriptor in an SCM_RIGHTS message (unix(7)): runc's console socket.
pub struct ConsoleSocket {
    monitor_end: OwnedFd,
    container_end: OwnedFd,
}

impl ConsoleSocket {
    pub fn new() -> Result<ConsoleSocket, LabError> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let (monitor_end, container_end) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|errno| LabError::StepFailed {
            syscall: "socketpair",
            target: "AF_UNIX, SOCK_SEQPACKET".into(),
            errno,
        })?;
        Ok(ConsoleSocket {
            monitor_end,
            container_end,
        })
    }

    /// In PID 1, after pivot_root(2): a pair from the container's
    /// /dev/ptmx, the far end its controlling terminal on 0-2, and the
    /// master sent to the monitor (and closed here).
    /// The end the container's process sends the master over.
    pub fn container_end(&self) -> BorrowedFd<'_> {
        self.container_end.as_fd()
    }

    pub fn open_inside(&self, narrator: &Narrator) -> Result<(), LabError> {
        open_and_send_master(narrator, self.container_end.as_fd())
    }

    /// In the monitor, once the container runs: the master PID 1 sent,
    /// with the user's window size if the monitor is on a terminal.
    pub fn receive(self) -> Result<ContainerTerminal, LabError> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg};
        drop(self.container_end);
        let mut byte = [0u8; 1];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut byte)];
        let failed = |errno| LabError::StepFailed {
            syscall: "recvmsg",
            target: "the console socket".into(),
            errno,
        };
        let message = recvmsg::<UnixAddr>(
            self.monitor_end.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(failed)?;
        let master = message
            .cmsgs()
            .map_err(failed)?
            .find_map(|cmsg| match cmsg {
                ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .ok_or_else(|| failed(Errno::EBADMSG))?;
        // SAFETY: the kernel just installed this descriptor for us, and PID 1
        // sent the master end of a pseudo-terminal pair.
        let master = unsafe { PtyMaster::from_owned_fd(OwnedFd::from_raw_fd(master)) };
        if let Some(&host) = host_terminal_fds().first() {
            // SAFETY: one of this process's fds 0-2, open for the call.
            copy_window_size(unsafe { BorrowedFd::borrow_raw(host) }, master.as_fd());
        }
        Ok(ContainerTerminal {
            master,
            pts: None,
            replaced: vec![0, 1, 2],
        })
    }
}
// ANCHOR_END: console

/// In the container, once its /dev/pts is in place: a pair from its
/// /dev/ptmx, the far end its controlling terminal on 0-2, and the master
/// sent over `socket` (SCM_RIGHTS) and closed here. Chapter 07's monitor
/// holds the other end of `socket`; in chapter 10 it is the console
/// socket an engine gives with `--console-socket`.
pub fn open_and_send_master(narrator: &Narrator, socket: BorrowedFd<'_>) -> Result<(), LabError> {
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
    let terminal = allocate_in_place_of(narrator, vec![0, 1, 2])?;
    make_controlling(narrator, &terminal)?;
    let master = [terminal.master.as_raw_fd()];
    narrator.run(
        Step {
            syscall: "sendmsg",
            args: "console socket, SCM_RIGHTS [master]",
            why: "whoever holds the console socket gets the master end; the container keeps only its own end",
            man: "unix(7)",
        },
        || {
            sendmsg::<UnixAddr>(
                socket.as_raw_fd(),
                &[std::io::IoSlice::new(b"m")],
                &[ControlMessage::ScmRights(&master)],
                MsgFlags::empty(),
                None,
            )
            .map(drop)
        },
    )
}

/// Set when SIGWINCH arrives: the user resized the window.
static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn note_resize(_: libc::c_int) {
    RESIZED.store(true, Ordering::SeqCst);
}

fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write one winsize struct.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
}

/// The user's terminal in raw mode while the relay runs (keys go to the
/// container's line discipline, not the host's: Ctrl-C reaches the
/// container as a byte and becomes its SIGINT there); restored on drop,
/// whatever happened.
struct RawMode<'a> {
    terminal: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    fn enter(terminal: BorrowedFd<'a>) -> Option<RawMode<'a>> {
        let saved = tcgetattr(terminal).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(terminal, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { terminal, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.terminal, SetArg::TCSADRAIN, &self.saved);
    }
}

impl ContainerTerminal {
    // ANCHOR: relay
    /// In the runtime, once the container runs: copy the user's keys to the
    /// container's terminal and its output back, until `child` exits. The
    /// child is not reaped here (WNOWAIT): `process::wait` collects it.
    pub fn relay(self, narrator: &Narrator, child: Pid) -> Result<(), LabError> {
        self.relay_into(narrator, child, true, |_| {})
    }

    /// `relay`, handing each chunk of output to `also` as well (ch07's log),
    /// and copying keys only when `keys` (`-i`).
    pub fn relay_into(
        self,
        narrator: &Narrator,
        child: Pid,
        keys: bool,
        mut also: impl FnMut(&[u8]),
    ) -> Result<(), LabError> {
        narrator
            .note("the runtime copies between your terminal and the container's until it exits");
        // Only the container may hold the far end now: when its last
        // process is gone, reading the master ends.
        drop(self.pts);
        // SAFETY: fds 0-2 stay open for the life of the runtime.
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        let input = (keys && self.replaced.contains(&0)).then_some(stdin);
        let output_fd = [1, 2, 0].into_iter().find(|fd| self.replaced.contains(fd));
        // SAFETY: as above.
        let output = output_fd.map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
        let _raw = input.and_then(RawMode::enter);
        let resize = SigAction::new(
            SigHandler::Handler(note_resize),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(Signal::SIGWINCH, &resize) };
        let master = self.master.as_fd();
        // Keys wait here when the container does not read them: a blocking
        // write into a full terminal would hang the runtime for good.
        let _ = nix::fcntl::fcntl(master, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        let mut pending: Vec<u8> = Vec::new();
        let mut input_open = input.is_some();
        let mut buffer = [0u8; 4096];
        // Copying is the runtime's CPU, not the container's: kept to a
        // share of one CPU however fast the container prints (see stdio).
        let governor = crate::runtime::stdio::CpuGovernor::start();
        loop {
            governor.pace();
            if RESIZED.swap(false, Ordering::SeqCst)
                && let Some(host) = output.or(input)
            {
                copy_window_size(host, master);
            }
            let mut wanted = PollFlags::POLLIN;
            if !pending.is_empty() {
                wanted |= PollFlags::POLLOUT;
            }
            let mut fds = vec![PollFd::new(master, wanted)];
            if let (true, Some(input), true) = (input_open, input, pending.len() < 1 << 16) {
                fds.push(PollFd::new(input, PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Err(Errno::EINTR) => continue,
                Err(_) => break,
                Ok(_) => {}
            }
            let master_events = fds[0].revents().unwrap_or(PollFlags::empty());
            let input_events = fds.get(1).and_then(|fd| fd.revents());
            if master_events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
                match read(master, &mut buffer) {
                    Ok(0) | Err(Errno::EIO) => break, // the container closed its end
                    Ok(n) => {
                        write_all(output, &buffer[..n]);
                        also(&buffer[..n]);
                    }
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(_) => break,
                }
            }
            if master_events.contains(PollFlags::POLLOUT) {
                match write(master, &pending) {
                    Ok(n) => drop(pending.drain(..n)),
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(_) => pending.clear(),
                }
            }
            if input_events.is_some_and(|e| e.intersects(PollFlags::POLLIN | PollFlags::POLLHUP)) {
                match read(stdin, &mut buffer) {
                    Ok(n) if n > 0 => pending.extend_from_slice(&buffer[..n]),
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Ok(_) | Err(_) => input_open = false,
                }
            }
            if crate::runtime::fork::has_exited(child) {
                drain(master, output, &mut also);
                break;
            }
        }
        Ok(())
    }
    // ANCHOR_END: relay
}

/// What the container wrote last, still in the master.
fn drain(master: BorrowedFd<'_>, output: Option<BorrowedFd<'_>>, also: &mut impl FnMut(&[u8])) {
    let mut buffer = [0u8; 4096];
    loop {
        let mut fds = [PollFd::new(master, PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            return;
        }
        match read(master, &mut buffer) {
            Ok(n) if n > 0 => {
                write_all(output, &buffer[..n]);
                also(&buffer[..n]);
            }
            _ => return,
        }
    }
}

fn write_all(to: Option<BorrowedFd<'_>>, bytes: &[u8]) {
    if let Some(to) = to {
        crate::runtime::stdio::write_all(to, bytes);
    }
}
