//! The isolation scorecard: the checks, their verdicts, and the matrix.
//!
//! `lab-probe` runs the checks inside a container; `lab tour` plants the
//! bait on the host side, runs the probe in every chapter, confirms what the
//! probe claims against what the host actually saw, and prints the matrix:
//! checks down, chapters across.

use colored::Colorize;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One cell of the matrix.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The container could not reach the host this way.
    #[serde(rename = "ISOLATED")]
    Isolated,
    /// It could.
    #[serde(rename = "LEAKS")]
    Leaks,
    /// The check could not be made here (missing bait, hardware, kernel).
    #[serde(rename = "N/A")]
    NotApplicable,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Isolated => "ISOLATED",
            Verdict::Leaks => "LEAKS",
            Verdict::NotApplicable => "N/A",
        }
    }

    /// The label padded to `width` and colored for a terminal.
    pub fn colored(self, width: usize) -> String {
        let text = format!("{:<width$}", self.label());
        match self {
            Verdict::Isolated => text.green().to_string(),
            Verdict::Leaks => text.red().bold().to_string(),
            Verdict::NotApplicable => text.dimmed().to_string(),
        }
    }
}

/// What one check found, with one line of evidence.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub check: String,
    pub verdict: Verdict,
    pub evidence: String,
    /// What the probe read from the bait (a file's or a segment's
    /// contents), for the harness to compare with the secret it kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
}

impl Finding {
    pub fn new(check: &str, verdict: Verdict, evidence: impl Into<String>) -> Finding {
        Finding {
            check: check.to_string(),
            verdict,
            evidence: evidence.into(),
            observed: None,
        }
    }
}

/// Where the harness hid things for the probe to look for. The secret the
/// bait holds is *not* in here, and no name in here is derived from it:
/// the probe reports what it read, and the harness compares.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(default)]
pub struct Bait {
    /// A file on the host, by its host path.
    pub host_file: Option<PathBuf>,
    /// Name of the marker file inside a leaked directory fd.
    pub marker_name: Option<String>,
    /// A harmless host process to see and signal (it waits for SIGUSR1).
    pub host_pid: Option<i32>,
    /// Key of a SysV shared memory segment on the host.
    pub shm_key: Option<i32>,
    /// Name of a POSIX message queue on the host.
    pub mq_name: Option<String>,
    /// A network interface only the host has.
    pub host_interface: Option<String>,
    /// A TCP port listening on the host's 127.0.0.1.
    pub loopback_port: Option<u16>,
    /// A host service listening on every address, by one of the host's
    /// own addresses that is not loopback.
    pub host_service: Option<std::net::SocketAddr>,
    /// Where to send a datagram whose source address is a lie
    /// (net.spoof-source): the host listens and looks at the source.
    pub forged_datagram: Option<ForgedDatagram>,
    /// An address the host keeps a neighbour entry for, as it would for a
    /// container or a machine on its LAN (net.arp-spoof): the probe claims
    /// it in ARP and the host looks at where the entry points afterwards.
    pub arp_victim: Option<std::net::Ipv4Addr>,
    /// A server in a container on another lab bridge (net.cross-bridge),
    /// which the host can reach directly.
    pub other_bridge_server: Option<std::net::SocketAddr>,
    /// `major:minor` of a block device of the host's (a loop device the
    /// tour attached to a file holding its secret).
    pub block_device: Option<(u64, u64)>,
    /// Source name the probe gives the tmpfs it mounts, so the host can find it.
    pub mount_tag: Option<String>,
    /// The hostname the probe sets, so the host can recognise it.
    pub hostname_tag: Option<String>,
    /// A file handle (name_to_handle_at(2)) of a file holding the secret,
    /// on the filesystem the rootfs lives on but outside the rootfs.
    pub file_handle: Option<FileHandleBait>,
    /// A device node the host left in the rootfs (for the tour's loop
    /// device), by the path the container sees it at.
    pub rootfs_node: Option<PathBuf>,
    /// Where, as the container sees it, the probe tries to create a file
    /// in the rootfs; the host looks for it on disk.
    pub rootfs_write: Option<PathBuf>,
    /// The name of a variable in the runtime's environment that holds the
    /// secret.
    pub env_name: Option<String>,
    /// What the probe types into any terminal it can reach (TIOCSTI); the
    /// tour runs each chapter on a terminal of its own and reads back what
    /// arrived there as if typed.
    pub tty_marker: Option<String>,
    /// The host added a key of its own to root's user keyring, its
    /// description a secret (sys.proc-keys): the probe reports what
    /// /proc/keys lists and the host looks for it.
    pub host_key: bool,
    /// The host watches its Ctrl-Alt-Del setting (sys.reboot) and puts it
    /// back: without this the probe does not touch reboot(2) at all.
    pub reboot_watched: bool,
    /// A setuid-root copy of the probe in the rootfs, by the path the
    /// container sees it at (user.setuid-gain).
    pub setuid_helper: Option<PathBuf>,
    /// Budgets the resource checks try to exceed: 4x the memory and the
    /// processes, 1.5x the CPU share.
    pub memory_limit_bytes: u64,
    pub pids_limit: u32,
    pub cpu_limit: f64,
}

/// One UDP datagram to send with a forged IPv4 source.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ForgedDatagram {
    /// A host address and the UDP port the host listens on.
    pub to: std::net::SocketAddrV4,
    /// The source to write into the IP header: not the probe's own.
    pub from: std::net::Ipv4Addr,
    /// The payload, so the host knows the datagram for the probe's.
    pub marker: String,
}

/// A file handle as name_to_handle_at(2) returns it: the filesystem's own
/// type and bytes, which open_by_handle_at(2) takes back.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FileHandleBait {
    /// Any directory on the same filesystem, as the container sees it: the
    /// mount fd open_by_handle_at(2) decodes the handle against.
    pub mount_path: PathBuf,
    pub handle_type: i32,
    /// The handle's bytes in hex.
    pub bytes: String,
}

/// No bait, and the tour's budgets: what a probe run by hand uses.
impl Default for Bait {
    fn default() -> Bait {
        Bait {
            host_file: None,
            marker_name: None,
            host_pid: None,
            shm_key: None,
            mq_name: None,
            host_interface: None,
            loopback_port: None,
            host_service: None,
            forged_datagram: None,
            arp_victim: None,
            other_bridge_server: None,
            block_device: None,
            mount_tag: None,
            hostname_tag: None,
            file_handle: None,
            rootfs_node: None,
            rootfs_write: None,
            env_name: None,
            tty_marker: None,
            host_key: false,
            reboot_watched: false,
            setuid_helper: None,
            memory_limit_bytes: MEMORY_BUDGET_BYTES,
            pids_limit: PIDS_BUDGET,
            cpu_limit: CPU_BUDGET,
        }
    }
}

/// Budgets the tour asks every chapter to respect (chapters with cgroups
/// get them as flags; the others have no way to enforce them).
pub const MEMORY_BUDGET_BYTES: u64 = 64 << 20;
pub const PIDS_BUDGET: u32 = 64;
pub const CPU_BUDGET: f64 = 0.5;

/// A row of the matrix.
pub struct Check {
    pub id: &'static str,
    pub group: &'static str,
    /// What the probe tries, as a row label.
    pub title: &'static str,
    /// The same label in the Korean edition of the book.
    pub title_ko: &'static str,
}

/// The language of a table for the book: the Korean edition includes the
/// tables `lab tour --book` writes into `ko/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    English,
    Korean,
}

impl Check {
    pub fn title_in(&self, language: Language) -> &'static str {
        match language {
            Language::English => self.title,
            Language::Korean => self.title_ko,
        }
    }
}

/// Every check, in the order rows are printed.
pub const CHECKS: &[Check] = &[
    Check {
        id: "fs.host-path",
        group: "filesystem",
        title: "read a host file by its path",
        title_ko: "경로로 호스트 파일 읽기",
    },
    Check {
        id: "fs.chroot-breakout",
        group: "filesystem",
        title: "climb out of chroot (chroot, chdir .., chroot .)",
        title_ko: "chroot 밖으로 빠져나가기 (chroot, chdir .., chroot .)",
    },
    Check {
        id: "fs.inherited-fd",
        group: "filesystem",
        title: "follow a directory fd the runtime leaked",
        title_ko: "런타임이 흘린 디렉터리 fd 따라가기",
    },
    Check {
        id: "fs.open-by-handle",
        group: "filesystem",
        title: "open a host file by its handle (shocker)",
        title_ko: "핸들로 호스트 파일 열기 (shocker)",
    },
    Check {
        id: "fs.rootfs-write",
        group: "filesystem",
        title: "change the rootfs on disk, for later containers",
        title_ko: "디스크의 rootfs를 바꿔 이후 컨테이너에 남기기",
    },
    Check {
        id: "fs.reopen-stdio",
        group: "filesystem",
        title: "reopen a host file passed as stdio",
        title_ko: "stdio로 받은 호스트 파일 다시 열기",
    },
    Check {
        id: "pid.see-host",
        group: "processes",
        title: "see a host process",
        title_ko: "호스트 프로세스 보기",
    },
    Check {
        id: "pid.signal-host",
        group: "processes",
        title: "signal a host process",
        title_ko: "호스트 프로세스에 시그널 보내기",
    },
    Check {
        id: "pid.own-numbering",
        group: "processes",
        title: "own PID numbering (PID 1 inside)",
        title_ko: "자체 PID 번호 (안에서는 PID 1)",
    },
    Check {
        id: "pid.environment",
        group: "processes",
        title: "read the runtime's environment",
        title_ko: "런타임의 환경 변수 읽기",
    },
    Check {
        id: "pid.ptrace-init",
        group: "processes",
        title: "read the memory of its PID 1 (ptrace access)",
        title_ko: "PID 1의 메모리 읽기 (ptrace 접근)",
    },
    Check {
        id: "tty.inject",
        group: "terminal",
        title: "type into the terminal it was started from (TIOCSTI)",
        title_ko: "자신을 시작한 터미널에 입력 넣기 (TIOCSTI)",
    },
    Check {
        id: "uts.hostname",
        group: "hostname",
        title: "change the host's hostname",
        title_ko: "호스트의 호스트 이름 바꾸기",
    },
    Check {
        id: "ipc.sysv-shm",
        group: "ipc",
        title: "attach a host SysV shared memory segment",
        title_ko: "호스트의 SysV 공유 메모리 세그먼트 붙이기",
    },
    Check {
        id: "ipc.posix-mq",
        group: "ipc",
        title: "open a host POSIX message queue",
        title_ko: "호스트의 POSIX 메시지 큐 열기",
    },
    Check {
        id: "mnt.leak",
        group: "mounts",
        title: "a mount made inside appears on the host",
        title_ko: "안에서 만든 마운트가 호스트에 나타남",
    },
    Check {
        id: "net.interfaces",
        group: "network",
        title: "see the host's network interfaces",
        title_ko: "호스트의 네트워크 인터페이스 보기",
    },
    Check {
        id: "net.loopback",
        group: "network",
        title: "connect to the host's 127.0.0.1",
        title_ko: "호스트의 127.0.0.1에 연결하기",
    },
    Check {
        id: "net.host-services",
        group: "network",
        title: "reach a host service on a host address",
        title_ko: "호스트 주소로 호스트 서비스에 닿기",
    },
    Check {
        id: "net.spoof-source",
        group: "network",
        title: "send packets with a forged source address",
        title_ko: "출발지 주소를 위조한 패킷 보내기",
    },
    Check {
        id: "net.arp-spoof",
        group: "network",
        title: "pose as a neighbour (forged ARP)",
        title_ko: "이웃 행세하기 (위조 ARP)",
    },
    Check {
        id: "net.cross-bridge",
        group: "network",
        title: "reach a container on another lab network",
        title_ko: "다른 랩 네트워크의 컨테이너에 닿기",
    },
    Check {
        id: "net.raw-socket",
        group: "network",
        title: "open a raw socket (NET_RAW)",
        title_ko: "raw 소켓 열기 (NET_RAW)",
    },
    Check {
        id: "user.host-root",
        group: "users",
        title: "root inside is root on the host",
        title_ko: "안의 root가 호스트의 root임",
    },
    Check {
        id: "user.shared-range",
        group: "users",
        title: "the container's ids are a host user's too",
        title_ko: "컨테이너의 ID가 호스트 사용자의 ID이기도 함",
    },
    Check {
        id: "user.setuid-gain",
        group: "users",
        title: "gain root through a setuid program",
        title_ko: "setuid 프로그램으로 root 얻기",
    },
    Check {
        id: "cap.sys-admin",
        group: "privileges",
        title: "CAP_SYS_ADMIN over the host",
        title_ko: "호스트에 대한 CAP_SYS_ADMIN",
    },
    Check {
        id: "cap.dangerous",
        group: "privileges",
        title: "other dangerous capabilities",
        title_ko: "그 밖의 위험한 케이퍼빌리티",
    },
    Check {
        id: "dev.block-read",
        group: "privileges",
        title: "mknod a host block device and read it",
        title_ko: "호스트 블록 장치를 mknod로 만들어 읽기",
    },
    Check {
        id: "dev.rootfs-node",
        group: "privileges",
        title: "open a device node left in the rootfs",
        title_ko: "rootfs에 남은 장치 노드 열기",
    },
    Check {
        id: "sys.proc-sys",
        group: "privileges",
        title: "write /proc/sys (core_pattern)",
        title_ko: "/proc/sys 쓰기 (core_pattern)",
    },
    Check {
        id: "sys.sysfs",
        group: "privileges",
        title: "write a /sys tunable",
        title_ko: "/sys 튜너블 쓰기",
    },
    Check {
        id: "sys.kcore",
        group: "privileges",
        title: "read the host kernel's memory (/proc/kcore)",
        title_ko: "호스트 커널의 메모리 읽기 (/proc/kcore)",
    },
    Check {
        id: "sys.keyctl",
        group: "syscalls",
        title: "use the kernel keyring (keyctl)",
        title_ko: "커널 키링 쓰기 (keyctl)",
    },
    Check {
        id: "sys.proc-keys",
        group: "syscalls",
        title: "list the host's keys in /proc/keys",
        title_ko: "/proc/keys에서 호스트의 키 나열하기",
    },
    Check {
        id: "sys.unshare",
        group: "syscalls",
        title: "make new namespaces (unshare)",
        title_ko: "새 네임스페이스 만들기 (unshare)",
    },
    Check {
        id: "sys.perf-event",
        group: "syscalls",
        title: "open a perf event (perf_event_open)",
        title_ko: "perf 이벤트 열기 (perf_event_open)",
    },
    Check {
        id: "sys.bpf",
        group: "syscalls",
        title: "load a BPF program (bpf)",
        title_ko: "BPF 프로그램 로드하기 (bpf)",
    },
    Check {
        id: "sys.userfaultfd",
        group: "syscalls",
        title: "create a userfaultfd (a tool of kernel exploits)",
        title_ko: "userfaultfd 만들기 (커널 익스플로잇의 도구)",
    },
    Check {
        id: "sys.kernel-module",
        group: "syscalls",
        title: "load a kernel module",
        title_ko: "커널 모듈 로드하기",
    },
    Check {
        id: "sys.reboot",
        group: "syscalls",
        title: "reboot the host",
        title_ko: "호스트 재부팅하기",
    },
    Check {
        id: "sys.cgroup-release-agent",
        group: "syscalls",
        title: "mount cgroup v1, reach release_agent",
        title_ko: "cgroup v1을 마운트해 release_agent에 닿기",
    },
    Check {
        id: "sys.runtime-exe",
        group: "syscalls",
        title: "reach the runtime binary (CVE-2019-5736)",
        title_ko: "런타임 바이너리에 닿기 (CVE-2019-5736)",
    },
    Check {
        id: "res.memory",
        group: "resources",
        title: "use 4x the memory budget",
        title_ko: "메모리 예산의 4배 쓰기",
    },
    Check {
        id: "res.tcp-memory",
        group: "resources",
        title: "queue 4x the memory budget in TCP buffers",
        title_ko: "메모리 예산의 4배를 TCP 버퍼에 쌓기",
    },
    Check {
        id: "res.pids",
        group: "resources",
        title: "run 4x the process budget",
        title_ko: "프로세스 예산의 4배 실행하기",
    },
    Check {
        id: "res.cpu",
        group: "resources",
        title: "use more CPU than the quota",
        title_ko: "쿼터보다 많은 CPU 쓰기",
    },
];

/// One chapter's column.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Column {
    /// `"01"`.
    pub chapter: String,
    /// `"ch01-chroot"`.
    pub binary: String,
    pub findings: Vec<Finding>,
}

impl Column {
    /// A `--privileged` column (`09p`): protections turned off on purpose,
    /// no step of the story the chapters tell.
    pub fn is_privileged(&self) -> bool {
        self.chapter.ends_with('p')
    }

    pub fn verdict(&self, check: &str) -> Option<Verdict> {
        self.findings
            .iter()
            .find(|f| f.check == check)
            .map(|f| f.verdict)
    }
}

/// The sentences around a chapter's table, in each of the book's languages.
struct Words {
    check: &'static str,
    no_change: fn(&str, &str) -> String,
    changes: fn(&str, &str) -> String,
    nothing_leaks: fn(&str) -> String,
    still_leaks: fn(&str) -> String,
}

impl Words {
    fn of(language: Language) -> Words {
        match language {
            Language::English => Words {
                check: "check",
                no_change: |before, after| {
                    format!("No check changes from ch{before} to ch{after}.\n")
                },
                changes: |before, after| format!("What changes from ch{before} to ch{after}:"),
                nothing_leaks: |chapter| format!("Nothing the tour checks leaks in ch{chapter}."),
                still_leaks: |chapter| format!("Still LEAKS in ch{chapter}:"),
            },
            Language::Korean => Words {
                check: "검사 항목",
                // "ch03으로" but "ch02로": the particle would follow the
                // number as it is read aloud. "에서" and "대비" do not.
                no_change: |before, after| {
                    format!("ch{after}에서 바뀌는 검사 항목은 없다 (ch{before} 대비).\n")
                },
                changes: |before, after| format!("ch{after}에서 바뀌는 것 (ch{before} 대비):"),
                nothing_leaks: |chapter| {
                    format!("ch{chapter}에서는 투어가 검사하는 것 중 새는 것이 없다.")
                },
                still_leaks: |chapter| format!("ch{chapter}에서 아직 LEAKS인 것:"),
            },
        }
    }
}

/// The whole scorecard, as `lab tour --json` prints it.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Matrix {
    pub columns: Vec<Column>,
}

impl Matrix {
    /// Checks isolated in one chapter and leaking in a later one: each one
    /// a regression, since every chapter builds on the one before. A
    /// `--privileged` column (`09p`) turns protections off on purpose and
    /// is no step of that story: it is left out.
    pub fn regressions(&self) -> Vec<String> {
        let mut found = Vec::new();
        for check in CHECKS {
            let mut isolated_in: Option<&Column> = None;
            for column in self.columns.iter().filter(|c| !c.is_privileged()) {
                match column.verdict(check.id) {
                    Some(Verdict::Isolated) => isolated_in = Some(column),
                    Some(Verdict::Leaks) => {
                        if let Some(earlier) = isolated_in {
                            found.push(format!(
                                "{}: ISOLATED in ch{} but LEAKS in ch{}",
                                check.id, earlier.chapter, column.chapter
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
        found
    }

    /// The colored table for a terminal.
    pub fn render(&self) -> String {
        let width = CHECKS.iter().map(|c| c.title.len()).max().unwrap_or(0);
        let mut out = format!("{:width$}", "");
        for column in &self.columns {
            out.push_str(
                &format!("  {:<8}", format!("ch{}", column.chapter))
                    .bold()
                    .to_string(),
            );
        }
        out.push('\n');
        let mut group = "";
        for check in CHECKS {
            if check.group != group {
                group = check.group;
                out.push_str(&format!("{}\n", group.to_uppercase().dimmed()));
            }
            out.push_str(&format!("{:width$}", check.title));
            for column in &self.columns {
                let verdict = column.verdict(check.id).unwrap_or(Verdict::NotApplicable);
                out.push_str(&format!("  {}", verdict.colored(8)));
            }
            out.push('\n');
        }
        out
    }

    /// The matrix as a Markdown table, for the book.
    pub fn markdown(&self) -> String {
        self.markdown_in(Language::English)
    }

    /// The matrix as a Markdown table in one of the book's languages: the
    /// check's label (its id as it is), then a verdict per chapter.
    pub fn markdown_in(&self, language: Language) -> String {
        let mut out = format!("| {} |", Words::of(language).check);
        for column in &self.columns {
            out.push_str(&format!(" ch{} |", column.chapter));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(self.columns.len()));
        out.push('\n');
        for check in CHECKS {
            out.push_str(&format!(
                "| {} (`{}`) |",
                check.title_in(language),
                check.id
            ));
            for column in &self.columns {
                let verdict = column.verdict(check.id).unwrap_or(Verdict::NotApplicable);
                out.push_str(&format!(" {} |", verdict.label()));
            }
            out.push('\n');
        }
        out
    }

    /// The matrix read back from its Markdown table (what `markdown`
    /// writes), without evidence: what the book's heat map is drawn from,
    /// so that the picture can be checked against the table on disk.
    pub fn from_markdown(table: &str) -> Option<Matrix> {
        let mut lines = table.lines();
        let mut columns: Vec<Column> = lines
            .next()?
            .split('|')
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .skip(1)
            .map(|cell| {
                Some(Column {
                    chapter: cell.strip_prefix("ch")?.to_string(),
                    binary: String::new(),
                    findings: Vec::new(),
                })
            })
            .collect::<Option<_>>()?;
        for line in lines.skip(1) {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let (label, verdicts) = cells.split_first()?;
            let id = label.rsplit_once("(`")?.1.strip_suffix("`)")?;
            if verdicts.len() != columns.len() {
                return None;
            }
            for (column, cell) in columns.iter_mut().zip(verdicts) {
                let verdict = [Verdict::Isolated, Verdict::Leaks, Verdict::NotApplicable]
                    .into_iter()
                    .find(|verdict| verdict.label() == *cell)?;
                column.findings.push(Finding::new(id, verdict, ""));
            }
        }
        Some(Matrix { columns })
    }

    /// What one chapter changed, for its book page: the checks whose
    /// verdict differs from the chapter before (for ch00, what leaks to
    /// begin with), then every check that still leaks, one a line. The
    /// whole matrix lives on the scorecard page. The chapter before is
    /// never a `--privileged` column: ch10 follows ch09, not ch09p. In
    /// either of the book's languages.
    pub fn markdown_diff_in(&self, chapter: &str, language: Language) -> Option<String> {
        let words = Words::of(language);
        let at = self.columns.iter().position(|c| c.chapter == chapter)?;
        let column = &self.columns[at];
        let verdict = |column: &Column, id| column.verdict(id).unwrap_or(Verdict::NotApplicable);
        let mut out = String::new();
        if let Some(before) = self.columns[..at].iter().rev().find(|c| !c.is_privileged()) {
            let changed: Vec<_> = CHECKS
                .iter()
                .filter(|check| verdict(before, check.id) != verdict(column, check.id))
                .collect();
            if changed.is_empty() {
                out.push_str(&(words.no_change)(&before.chapter, chapter));
            } else {
                out.push_str(&format!(
                    "{}\n\n| {} | ch{} | ch{chapter} |\n|---|---|---|\n",
                    (words.changes)(&before.chapter, chapter),
                    words.check,
                    before.chapter
                ));
                for check in changed {
                    out.push_str(&format!(
                        "| {} | {} | {} |\n",
                        check.title_in(language),
                        verdict(before, check.id).label(),
                        verdict(column, check.id).label()
                    ));
                }
            }
        }
        let leaking: Vec<_> = CHECKS
            .iter()
            .filter(|check| verdict(column, check.id) == Verdict::Leaks)
            .collect();
        if leaking.is_empty() {
            out.push_str(&format!("\n{}\n", (words.nothing_leaks)(chapter)));
        } else {
            out.push_str(&format!("\n{}\n\n", (words.still_leaks)(chapter)));
            for check in leaking {
                out.push_str(&format!(
                    "- {} (`{}`)\n",
                    check.title_in(language),
                    check.id
                ));
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(chapter: &str, cells: &[(&str, Verdict)]) -> Column {
        Column {
            chapter: chapter.into(),
            binary: format!("ch{chapter}"),
            findings: cells
                .iter()
                .map(|(id, v)| Finding::new(id, *v, ""))
                .collect(),
        }
    }

    #[test]
    fn a_chapters_diff_lists_what_changed_and_what_still_leaks() {
        let matrix = Matrix {
            columns: vec![
                column(
                    "00",
                    &[
                        ("fs.host-path", Verdict::Leaks),
                        ("pid.signal-host", Verdict::Leaks),
                    ],
                ),
                column(
                    "01",
                    &[
                        ("fs.host-path", Verdict::Isolated),
                        ("pid.signal-host", Verdict::Leaks),
                    ],
                ),
            ],
        };
        let first = matrix.markdown_diff_in("00", Language::English).unwrap();
        assert!(!first.contains("What changes"), "{first}");
        assert!(first.contains("(`fs.host-path`)\n"), "{first}");
        let second = matrix.markdown_diff_in("01", Language::English).unwrap();
        let host_path = CHECKS.iter().find(|c| c.id == "fs.host-path").unwrap();
        assert!(
            second.contains(&format!("| {} | LEAKS | ISOLATED |", host_path.title)),
            "{second}"
        );
        assert!(second.contains("(`pid.signal-host`)\n"), "{second}");
        assert!(!second.contains("(`fs.host-path`)"), "{second}");
        assert_eq!(matrix.markdown_diff_in("02", Language::English), None);
    }

    #[test]
    fn the_chapter_after_a_privileged_column_is_compared_with_the_one_before_it() {
        let cells = |verdict| [("net.raw-socket", verdict)];
        let matrix = Matrix {
            columns: vec![
                column("09", &cells(Verdict::Isolated)),
                column("09p", &cells(Verdict::Leaks)),
                column("10", &cells(Verdict::Isolated)),
            ],
        };
        let privileged = matrix.markdown_diff_in("09p", Language::English).unwrap();
        assert!(
            privileged.starts_with("What changes from ch09 to ch09p"),
            "{privileged}"
        );
        let next = matrix.markdown_diff_in("10", Language::English).unwrap();
        assert!(
            next.starts_with("No check changes from ch09 to ch10."),
            "{next}"
        );
    }

    #[test]
    fn the_markdown_table_reads_back_as_the_same_matrix() {
        let matrix = Matrix {
            columns: vec![
                column(
                    "00",
                    &[
                        ("fs.host-path", Verdict::Leaks),
                        ("sys.kcore", Verdict::NotApplicable),
                    ],
                ),
                column("09p", &[("fs.host-path", Verdict::Isolated)]),
            ],
        };
        let table = matrix.markdown();
        let read = Matrix::from_markdown(&table).expect("the table parses");
        assert_eq!(read.markdown(), table);
        assert_eq!(read.columns[1].chapter, "09p");
        assert!(Matrix::from_markdown("| check | ch00 |\n|---|---|\n| x | MAYBE |\n").is_none());
    }

    #[test]
    fn check_ids_are_unique() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len());
    }

    #[test]
    fn isolated_then_leaks_is_a_regression() {
        let matrix = Matrix {
            columns: vec![
                column("00", &[("fs.host-path", Verdict::Leaks)]),
                column("01", &[("fs.host-path", Verdict::Isolated)]),
                column("02", &[("fs.host-path", Verdict::NotApplicable)]),
                column("03", &[("fs.host-path", Verdict::Leaks)]),
            ],
        };
        assert_eq!(
            matrix.regressions(),
            vec!["fs.host-path: ISOLATED in ch01 but LEAKS in ch03".to_string()]
        );
    }

    #[test]
    fn leaks_then_isolated_is_progress() {
        let matrix = Matrix {
            columns: vec![
                column("00", &[("uts.hostname", Verdict::Leaks)]),
                column("01", &[("uts.hostname", Verdict::Isolated)]),
            ],
        };
        assert!(matrix.regressions().is_empty());
    }

    #[test]
    fn verdicts_serialise_as_the_matrix_shows_them() {
        let finding = Finding::new("x", Verdict::NotApplicable, "e");
        let json = serde_json::to_string(&finding).unwrap();
        assert_eq!(json, r#"{"check":"x","verdict":"N/A","evidence":"e"}"#);
    }
}
