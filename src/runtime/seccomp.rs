//! A syscall filter: Docker's JSON seccomp profiles compiled to classic BPF
//! and loaded with seccomp(2), the last step before the container's command
//! runs (chapter 09).
//!
//! # Why seccompiler
//!
//! The lab promises `cargo build` on a machine with nothing installed. The
//! `libseccomp` crate links the C library and needs libseccomp-dev to build;
//! `seccompiler` (rust-vmm's, which Firecracker and Cloud Hypervisor load
//! their own filters with) compiles rules to BPF in plain Rust. It has three
//! limits this module works around:
//!
//! 1. **One match action per filter.** A profile has many (ALLOW for most
//!    calls, ERRNO(ENOSYS) for clone3, maybe KILL for some); see below.
//! 2. **One architecture per filter.** Only the native one is compiled; see
//!    "Other architectures".
//! 3. **Numbers, not names.** `syscall_table.rs` holds the numbers, generated
//!    from the kernel headers by `syscall-table.sh`. A name this architecture
//!    does not have is skipped, as libseccomp does (Docker's list names
//!    32-bit calls such as `chown32`), and counted in [`Filter::skipped`].
//!
//! seccompiler's own `apply_filter` always sets no_new_privs first; the
//! chapter must be able to load a filter with it off
//! (`--security-opt no-new-privileges=false`, as root of the container's user
//! namespace, which holds CAP_SYS_ADMIN there), so [`Filter::load`] makes the
//! seccomp(2) call itself.
//!
//! # One profile, several filters
//!
//! A process may install several filters; the kernel runs them all on every
//! call and keeps the answer of highest precedence (seccomp(2), "Return
//! values": KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF > TRACE >
//! LOG > ALLOW). So a profile with default action D and rules whose actions
//! are A1..An becomes:
//!
//! - a **base** filter: every applicable rule's call and arguments, whatever
//!   its action, -> ALLOW; anything else -> D (left out when D is ALLOW);
//! - one filter **per distinct rule action** A other than ALLOW: the rules
//!   with action A -> A; anything else -> ALLOW.
//!
//! A call that matches a rule passes the base filter and gets its rule's
//! action from that rule's filter; a call that matches no rule gets D from
//! the base; a call that matches two rules gets the stricter of the two,
//! which is what libseccomp does within one filter. Several conditions in one
//! rule must all hold; several rules for one name are alternatives. (runc
//! turns a rule that compares one argument twice into alternatives, because
//! libseccomp refuses such a rule; here both comparisons must hold, as the
//! profile's text says.)
//!
//! # A lookup tree in front
//!
//! seccompiler compares a call's number with each listed call in turn.
//! Each program here starts, after the architecture check, with a binary
//! search of the calls it matches whatever their arguments (`lookup_tree`,
//! the shape libseccomp gives its filters too), and leaves seccompiler's
//! chain only the calls with argument conditions. It matters twice: at
//! load time the kernel runs the filter once for every syscall number to
//! fill its action cache (Linux 5.11), and every call the cache cannot
//! answer walks the filter on each use.
//!
//! # Other architectures
//!
//! A 64-bit x86 kernel also runs 32-bit calls (`int 0x80`, arriving with
//! AUDIT_ARCH_I386) and x32 calls (AUDIT_ARCH_X86_64 with bit 30 set in the
//! number). Their numbers mean other calls (11 is execve on i386, munmap on
//! x86_64), so the native allowlist says nothing about them. Docker allows
//! them with filters of their own; this lab kills the process instead
//! (KILL_PROCESS, which seccompiler emits for a foreign architecture and
//! which this module also returns for x32 numbers): a container of 64-bit
//! programs has no use for them, they are a classic way around filters that
//! check only numbers, and a program killed with SIGSYS ("bad system call",
//! exit 159) says at once what happened where ERRNO would make it fail
//! later, somewhere else, for a reason nobody can see.

pub mod bpf;
mod docker_default;
mod profile;
pub mod syscall_table;
#[cfg(test)]
mod tests;

pub use bpf::Call;
pub use profile::{
    Action, Arch, ArchMapEntry, ArgCondition, ArgIndex, CompareOp, FilterFlag, GoArch, Profile,
    Scope, SyscallRule, Target,
};
pub use seccompiler::SeccompAction;

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use seccompiler::{
    BpfProgram, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};
use std::collections::BTreeMap;

/// The errno of SCMP_ACT_ERRNO when neither the rule nor the profile gives
/// one, as runc and Docker do.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// x32's calls are x86_64 calls with this bit set in the number
/// (`__X32_SYSCALL_BIT`, asm/unistd.h).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What this machine's filters are compiled for.
struct Native {
    table: &'static [(&'static str, i64)],
    go: GoArch,
    target: TargetArch,
    audit: u32,
}

#[cfg(target_arch = "x86_64")]
const NATIVE: Option<Native> = Some(Native {
    table: syscall_table::X86_64,
    go: GoArch::Amd64,
    target: TargetArch::x86_64,
    audit: bpf::AUDIT_ARCH_X86_64,
});

#[cfg(target_arch = "aarch64")]
const NATIVE: Option<Native> = Some(Native {
    table: syscall_table::AARCH64,
    go: GoArch::Arm64,
    target: TargetArch::aarch64,
    audit: bpf::AUDIT_ARCH_AARCH64,
});

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NATIVE: Option<Native> = None;

/// The actions a profile may name (for `features`).
pub fn action_names() -> &'static [&'static str] {
    profile::Action::NAMES
}

/// The argument comparisons a profile may use (for `features`).
pub fn operator_names() -> &'static [&'static str] {
    &[
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ]
}

/// The architectures filters are compiled for: the native one alone
/// (the others' calls are killed, see `compile`).
pub fn native_arch_names() -> &'static [&'static str] {
    match std::env::consts::ARCH {
        "x86_64" => &["SCMP_ARCH_X86_64"],
        "aarch64" => &["SCMP_ARCH_AARCH64"],
        _ => &[],
    }
}

fn native_audit_arch() -> u32 {
    NATIVE.as_ref().map_or(0, |native| native.audit)
}

/// This architecture's system calls, by name and number (none where the
/// lab has no table).
pub fn native_syscalls() -> &'static [(&'static str, i64)] {
    NATIVE.as_ref().map_or(&[], |native| native.table)
}

/// The number of a system call on this architecture, if it has it.
pub fn syscall_number(name: &str) -> Option<i64> {
    native_syscalls()
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, number)| *number)
}

/// The name of a system call number on this architecture.
pub fn syscall_name(number: i64) -> Option<&'static str> {
    native_syscalls()
        .iter()
        .find(|(_, known)| *known == number)
        .map(|(name, _)| *name)
}

/// One compiled BPF program and the action it exists to return.
#[derive(Debug, Clone)]
struct Program {
    /// What a matching call gets from this program (D for the base filter).
    decides: SeccompAction,
    bpf: BpfProgram,
}

/// A profile compiled for this container on this machine: the programs to
/// load, in order.
#[derive(Debug, Clone)]
pub struct Filter {
    programs: Vec<Program>,
    /// seccomp(2)'s flags argument, from the profile's `flags`.
    flags: libc::c_ulong,
    /// Names the profile gives that this architecture does not have.
    skipped: Vec<String>,
}

/// The calls of one action's filter: a number with no conditions matches
/// whatever its arguments.
#[derive(Default)]
struct Matches(BTreeMap<i64, Option<Vec<SeccompRule>>>);

impl Matches {
    fn add(&mut self, number: i64, conditions: &[SeccompCondition]) {
        let entry = self.0.entry(number).or_insert_with(|| Some(Vec::new()));
        match entry {
            // Already matched whatever the arguments: nothing to add.
            None => {}
            Some(_) if conditions.is_empty() => *entry = None,
            Some(rules) => rules.push(
                SeccompRule::new(conditions.to_vec()).expect("a rule with conditions is valid"),
            ),
        }
    }

    /// The numbers matched whatever their arguments, for the lookup tree,
    /// and the rules with conditions, in seccompiler's form.
    fn split(self) -> (Vec<u32>, BTreeMap<i64, Vec<SeccompRule>>) {
        let mut any_arguments = Vec::new();
        let mut conditional = BTreeMap::new();
        for (number, rules) in self.0 {
            match rules {
                None => any_arguments.push(number as u32),
                Some(rules) => {
                    conditional.insert(number, rules);
                }
            }
        }
        (any_arguments, conditional)
    }
}

// ANCHOR: lookup_tree
/// How many numbers a leaf of the lookup tree compares one by one.
const LEAF: usize = 4;

/// The numbers a program matches whatever the arguments, found by a
/// binary search in BPF that returns `matched` at once; a number it does
/// not hold falls through to seccompiler's program after it (argument
/// conditions, then the program's default).
///
/// seccompiler compares the number with each call in turn. With the ~300
/// calls of Docker's list, that chain is walked by every call the kernel's
/// action cache cannot answer (Linux 5.11 caches the calls a filter allows
/// whatever their arguments), and at load time for *every* syscall number,
/// which is how the kernel fills that cache: most of the load's cost. A
/// tree of JGE on the middle number, down to leaves of a few JEQs, takes
/// about log2(300) comparisons instead of up to 300. libseccomp builds the
/// same kind of tree (its "binary tree" optimisation); seccompiler does
/// not, so the lab adds it in front.
fn lookup_tree(numbers: &[u32], matched: u32) -> Vec<sock_filter> {
    let mut program = vec![bpf::statement(bpf::LOAD_WORD, bpf::OFFSET_NR)];
    let mut to_the_end = Vec::new();
    search(numbers, matched, &mut program, &mut to_the_end);
    let end = program.len();
    for at in to_the_end {
        program[at].k = (end - at - 1) as u32;
    }
    program
}

/// One node: a leaf of JEQs, or a JGE on the middle number whose upper
/// half is reached through a JA (a conditional jump goes at most 255
/// instructions; JA, 2^32).
fn search(
    numbers: &[u32],
    matched: u32,
    program: &mut Vec<sock_filter>,
    to_the_end: &mut Vec<usize>,
) {
    if numbers.len() <= LEAF {
        let count = numbers.len();
        for (index, number) in numbers.iter().enumerate() {
            // Equal: on to the RET after the last JEQ and the JA.
            program.push(bpf::jump(
                bpf::JUMP_IF_EQUAL,
                *number,
                (count - index) as u8,
                0,
            ));
        }
        to_the_end.push(program.len());
        program.push(bpf::statement(bpf::JUMP_ALWAYS, 0));
        program.push(bpf::statement(bpf::RETURN, matched));
        return;
    }
    let middle = numbers.len() / 2;
    program.push(bpf::jump(bpf::JUMP_IF_AT_LEAST, numbers[middle], 0, 1));
    let to_upper = program.len();
    program.push(bpf::statement(bpf::JUMP_ALWAYS, 0));
    search(&numbers[..middle], matched, program, to_the_end);
    program[to_upper].k = (program.len() - to_upper - 1) as u32;
    search(&numbers[middle..], matched, program, to_the_end);
}
// ANCHOR_END: lookup_tree

/// seccompiler's program, the architecture checked (its first three
/// instructions), then the lookup tree, then the rest: jumps in BPF are
/// relative and go forward only, so what follows is unchanged.
fn with_lookup_tree(program: &mut BpfProgram, tree: Vec<sock_filter>) {
    if tree.len() > 1 {
        program.splice(ARCH_CHECK..ARCH_CHECK, tree);
    }
}

/// seccompiler's architecture check: load arch, compare, kill.
const ARCH_CHECK: usize = 3;

fn refused(message: String) -> LabError {
    LabError::Refused {
        message,
        hint: "fix the profile, or run with --security-opt seccomp=unconfined".into(),
    }
}

/// A profile's action with its errno filled in.
fn resolve(action: Action, errno: Option<u32>, default_errno: u32) -> SeccompAction {
    match action {
        Action::Allow => SeccompAction::Allow,
        Action::Errno => SeccompAction::Errno(errno.unwrap_or(default_errno)),
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
        Action::Trap => SeccompAction::Trap,
        Action::Trace => SeccompAction::Trace(errno.unwrap_or(0)),
        Action::Log => SeccompAction::Log,
    }
}

/// Arguments the kernel declares as `int` (or `unsigned int`): it uses
/// their low 32 bits and ignores the rest, so a filter must compare only
/// those. Compared as 64-bit values, `socket(AF_VSOCK | 1 << 32, ...)`
/// passes a "family != AF_VSOCK" rule and the kernel then makes an
/// AF_VSOCK socket (found by this chapter's attack review). The calls and
/// argument indexes of the kernel's SYSCALL_DEFINE lines that profiles
/// put conditions on.
const INT_ARGUMENTS: [(&str, u8); 16] = [
    ("socket", 0),
    ("socket", 1),
    ("socket", 2),
    ("socketpair", 0),
    ("socketpair", 1),
    ("socketpair", 2),
    ("personality", 0),
    ("ioctl", 1),
    ("prctl", 0),
    ("fcntl", 1),
    ("setsockopt", 1),
    ("setsockopt", 2),
    ("getsockopt", 1),
    ("getsockopt", 2),
    ("kill", 1),
    ("tgkill", 2),
];

/// One argument condition of call `name` in seccompiler's terms: 32-bit
/// for the kernel's `int` arguments, else 64-bit, as libseccomp compares
/// on a 64-bit architecture.
fn condition(name: &str, arg: &ArgCondition) -> SeccompCondition {
    let (op, value) = match arg.op {
        CompareOp::NotEqual => (SeccompCmpOp::Ne, arg.value),
        CompareOp::Less => (SeccompCmpOp::Lt, arg.value),
        CompareOp::LessOrEqual => (SeccompCmpOp::Le, arg.value),
        CompareOp::Equal => (SeccompCmpOp::Eq, arg.value),
        CompareOp::GreaterOrEqual => (SeccompCmpOp::Ge, arg.value),
        CompareOp::Greater => (SeccompCmpOp::Gt, arg.value),
        // libseccomp: (arg & value) == valueTwo; seccompiler: (arg & mask)
        // == (its value & mask). The profile check made valueTwo lie inside
        // the mask, so the two agree.
        CompareOp::MaskedEqual => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
    };
    let is_int = INT_ARGUMENTS.contains(&(name, arg.index.0));
    let (op, value) = match (is_int, op) {
        (true, SeccompCmpOp::MaskedEq(mask)) => (
            SeccompCmpOp::MaskedEq(mask & 0xffff_ffff),
            value & 0xffff_ffff,
        ),
        (true, op) => (op, value & 0xffff_ffff),
        (false, op) => (op, value),
    };
    let width = match is_int {
        true => SeccompCmpArgLen::Dword,
        false => SeccompCmpArgLen::Qword,
    };
    SeccompCondition::new(arg.index.0, width, op, value)
        .expect("index checked when the profile was read")
}

/// After seccompiler's architecture check, also kill x32 calls, which share
/// x86_64's AUDIT_ARCH and differ only by bit 30 of the number. The check
/// is the program's first three instructions; jumps are relative and only
/// go forward, so inserting after them leaves the rest as it was.
fn guard_x32(program: &mut BpfProgram) -> Result<(), LabError> {
    let expected_prefix = [
        bpf::statement(bpf::LOAD_WORD, bpf::OFFSET_ARCH),
        bpf::jump(bpf::JUMP_IF_EQUAL, bpf::AUDIT_ARCH_X86_64, 1, 0),
        bpf::statement(bpf::RETURN, bpf::RET_KILL_PROCESS),
    ];
    if program.get(..3) != Some(&expected_prefix[..]) {
        return Err(refused(
            "seccomp: seccompiler's program does not start with the architecture check this module expects".into(),
        ));
    }
    let guard = [
        bpf::statement(bpf::LOAD_WORD, bpf::OFFSET_NR),
        bpf::jump(bpf::JUMP_IF_AT_LEAST, X32_SYSCALL_BIT, 0, 1),
        bpf::statement(bpf::RETURN, bpf::RET_KILL_PROCESS),
    ];
    program.splice(3..3, guard);
    Ok(())
}

impl<'a> Target<'a> {
    /// A container that will hold `capabilities` (`"CAP_SYS_ADMIN"`, ...),
    /// on this machine's kernel and architecture: what a profile's
    /// `includes` and `excludes` are resolved against.
    pub fn here(capabilities: &'a [&'a str]) -> Result<Target<'a>, LabError> {
        let native = NATIVE.as_ref().ok_or_else(|| {
            refused(format!(
                "seccomp: this lab compiles filters for x86_64 and aarch64, not {}",
                std::env::consts::ARCH
            ))
        })?;
        let release = crate::hostinfo::kernel_release();
        let kernel = crate::hostinfo::parse_kernel_version(&release).ok_or_else(|| {
            refused(format!(
                "seccomp: kernel release {release:?} does not say its version"
            ))
        })?;
        Ok(Target {
            capabilities,
            kernel,
            arch: native.go,
        })
    }
}

/// Kernel limit on one program (BPF_MAXINSNS, linux/bpf_common.h).
const MAX_INSTRUCTIONS: usize = 4096;

impl Profile {
    /// Compile the profile for a container that will hold `capabilities`
    /// (`"CAP_SYS_ADMIN"`, ...), on this machine's kernel and architecture.
    pub fn compile(&self, capabilities: &[&str]) -> Result<Filter, LabError> {
        self.compile_for(&Target::here(capabilities)?)
    }

    // ANCHOR: compile
    /// Compile for `target`: resolve `includes`/`excludes`, look the names
    /// up, and build the base filter and one filter per rule action (the
    /// module doc says why).
    pub fn compile_for(&self, target: &Target<'_>) -> Result<Filter, LabError> {
        let native = NATIVE
            .as_ref()
            .ok_or_else(|| refused("seccomp: no syscall table for this architecture".into()))?;
        let default_errno = self.default_errno_ret.unwrap_or(DEFAULT_ERRNO);
        let default_action = resolve(self.default_action, None, default_errno);

        // Every applicable rule's calls, for the base filter's ALLOW...
        let mut any_rule = Matches::default();
        // ...and, per action other than ALLOW, the calls that get it.
        let mut by_action: Vec<(SeccompAction, Matches)> = Vec::new();
        let mut skipped = Vec::new();

        for rule in self.syscalls.iter().filter(|rule| rule.applies_to(target)) {
            let action = resolve(rule.action, rule.errno_ret, default_errno);
            for name in rule.all_names() {
                let conditions: Vec<SeccompCondition> =
                    rule.args.iter().map(|arg| condition(name, arg)).collect();
                let Some(number) = syscall_number(name) else {
                    if !skipped.iter().any(|seen| seen == name) {
                        skipped.push(name.to_string());
                    }
                    continue;
                };
                any_rule.add(number, &conditions);
                if action != SeccompAction::Allow {
                    let position = match by_action.iter().position(|(known, _)| *known == action) {
                        Some(position) => position,
                        None => {
                            by_action.push((action.clone(), Matches::default()));
                            by_action.len() - 1
                        }
                    };
                    by_action[position].1.add(number, &conditions);
                }
            }
        }

        // (the action a program exists for, what it returns on a match,
        // what it returns otherwise, its calls)
        let mut filters = Vec::new();
        if default_action != SeccompAction::Allow {
            filters.push((
                default_action.clone(),
                SeccompAction::Allow,
                default_action,
                any_rule,
            ));
        }
        for (action, matches) in by_action {
            filters.push((action.clone(), action, SeccompAction::Allow, matches));
        }

        let mut programs = Vec::new();
        for (decides, on_match, otherwise, matches) in filters {
            let (any_arguments, conditional) = matches.split();
            let tree = lookup_tree(&any_arguments, u32::from(on_match.clone()));
            let mut bpf: BpfProgram =
                SeccompFilter::new(conditional, otherwise, on_match, native.target)
                    .and_then(BpfProgram::try_from)
                    .map_err(|error| refused(format!("seccomp: {error}")))?;
            with_lookup_tree(&mut bpf, tree);
            if native.target == TargetArch::x86_64 {
                guard_x32(&mut bpf)?;
            }
            if bpf.len() > MAX_INSTRUCTIONS {
                return Err(refused(format!(
                    "seccomp: a program of {} instructions is over the kernel's limit of {MAX_INSTRUCTIONS}",
                    bpf.len()
                )));
            }
            programs.push(Program { decides, bpf });
        }

        let flags = self.flags.iter().fold(0, |bits, flag| bits | flag.bit());
        Filter::in_loadable_order(programs, flags, skipped)
    }
    // ANCHOR_END: compile
}

impl Filter {
    /// Order the programs so that each seccomp(2) call that loads one is
    /// still allowed by those loaded before it: a program that denies
    /// seccomp(2) itself goes last. Two that deny it cannot both be loaded.
    fn in_loadable_order(
        mut programs: Vec<Program>,
        flags: libc::c_ulong,
        skipped: Vec<String>,
    ) -> Result<Filter, LabError> {
        let loading = Filter::loading_call(flags);
        programs.sort_by_key(|program| {
            bpf::action_of(bpf::run(&program.bpf, &loading).unwrap_or(bpf::RET_KILL_PROCESS))
                != SeccompAction::Allow
        });
        let filter = Filter {
            programs,
            flags,
            skipped,
        };
        for loaded in 1..filter.programs.len() {
            if filter.decide_among(&filter.programs[..loaded], &loading) != SeccompAction::Allow {
                return Err(refused(
                    "seccomp: the profile denies seccomp(2) itself in two of its programs, so it cannot be loaded".into(),
                ));
            }
        }
        Ok(filter)
    }

    /// The call `load` makes, as a filter sees it.
    fn loading_call(flags: libc::c_ulong) -> Call {
        let number = syscall_number("seccomp").unwrap_or(-1);
        Call::native(
            number,
            [libc::SECCOMP_SET_MODE_FILTER as u64, flags, 0, 0, 0, 0],
        )
    }

    /// How many BPF instructions the programs hold together.
    pub fn instructions(&self) -> usize {
        self.programs.iter().map(|program| program.bpf.len()).sum()
    }

    /// How many programs `load` installs.
    pub fn programs(&self) -> usize {
        self.programs.len()
    }

    /// The names in the profile this architecture has no call for.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Whether the kernel's action cache lets native call `number` through
    /// without running any of the programs: each must always allow it,
    /// whatever its arguments ([`bpf::always_allows`]).
    pub fn kernel_caches(&self, number: i64) -> bool {
        self.programs
            .iter()
            .all(|program| bpf::always_allows(&program.bpf, number as i32, native_audit_arch()))
    }

    /// How many instructions the programs run, together, to decide `call`
    /// when the cache does not answer for it.
    pub fn instructions_run(&self, call: &Call) -> usize {
        self.programs
            .iter()
            .map(|program| bpf::run_counting(&program.bpf, call).map_or(0, |(_, ran)| ran))
            .sum()
    }

    /// What the loaded filter would do with `call`, worked out the kernel's
    /// way: every program runs, the strictest answer wins.
    pub fn decide(&self, call: &Call) -> SeccompAction {
        self.decide_among(&self.programs, call)
    }

    /// What the filter does with native call `number` and these arguments.
    pub fn decide_native(&self, number: i64, args: [u64; 6]) -> SeccompAction {
        self.decide(&Call::native(number, args))
    }

    fn decide_among(&self, programs: &[Program], call: &Call) -> SeccompAction {
        let answers = programs
            .iter()
            .map(|program| bpf::run(&program.bpf, call).unwrap_or(bpf::RET_KILL_PROCESS));
        bpf::action_of(bpf::combine(answers.collect::<Vec<_>>().into_iter()))
    }

    /// What each program is for, in load order (for `--explain`).
    pub fn describe(&self) -> Vec<String> {
        self.programs
            .iter()
            .map(|program| format!("{:?}: {} instructions", program.decides, program.bpf.len()))
            .collect()
    }

    // ANCHOR: load
    /// Install the programs with seccomp(2) SECCOMP_SET_MODE_FILTER, one call
    /// each, narrated as one step. From here on the kernel checks every
    /// system call of this process and of everything it starts, for good: a
    /// filter can be added to, never removed.
    ///
    /// The kernel takes a filter only from a process that has set
    /// no_new_privs (prctl(2) PR_SET_NO_NEW_PRIVS) or holds CAP_SYS_ADMIN in
    /// its user namespace, so that a filter cannot be used to trick a setuid
    /// program into misbehaving; without either, this fails with EACCES.
    pub fn load(&self, narrator: &Narrator) -> Result<(), LabError> {
        let args = format!(
            "SECCOMP_SET_MODE_FILTER, {} programs, {} instructions",
            self.programs.len(),
            self.instructions()
        );
        narrator.run(
            Step {
                syscall: "seccomp",
                args: &args,
                why: "from here on the kernel checks every system call of the container against the profile, and refuses the ones it has no business making",
                man: "seccomp(2)",
            },
            || self.install(),
        )
    }
    // ANCHOR_END: load

    /// The seccomp(2) calls themselves, and nothing else: no allocation, so
    /// that a child forked from a threaded process may call it (and `lab
    /// bench` may time them alone). [`Filter::load`] is the narrated step.
    pub fn install(&self) -> nix::Result<()> {
        for program in &self.programs {
            // seccompiler's sock_filter is #[repr(C)] with the kernel's
            // layout (u16, u8, u8, u32), as libc's is.
            let fprog = libc::sock_fprog {
                len: program.bpf.len() as u16,
                filter: program.bpf.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: fprog points at a live program of `len` instructions;
            // the kernel copies it before returning and keeps no pointer
            // into our memory.
            let result = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    self.flags,
                    &fprog as *const libc::sock_fprog,
                )
            };
            match result {
                0 => {}
                // With SECCOMP_FILTER_FLAG_TSYNC, a positive answer is the
                // thread that could not be synchronized.
                thread if thread > 0 => return Err(nix::errno::Errno::ESRCH),
                _ => return Err(nix::errno::Errno::last()),
            }
        }
        Ok(())
    }
}
