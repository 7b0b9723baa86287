//! Running a compiled program without the kernel: a classic-BPF interpreter
//! for the few instructions seccompiler emits, over the same `seccomp_data`
//! the kernel hands a filter. It lets the tests (and `--explain`) say what a
//! profile does to a call ("keyctl -> EPERM") instead of comparing bytes.
//!
//! The instruction set is the one of bpf(4) on the BSDs and of
//! Documentation/networking/filter.rst in Linux; seccomp allows only
//! absolute loads from `seccomp_data` (seccomp(2), "Filters").

use seccompiler::{SeccompAction, sock_filter};

// Instruction classes and fields (linux/bpf_common.h).
const CLASS_LD: u16 = 0x00;
const CLASS_ALU: u16 = 0x04;
const CLASS_JMP: u16 = 0x05;
const CLASS_RET: u16 = 0x06;
const SIZE_WORD: u16 = 0x00;
const MODE_ABS: u16 = 0x20;
const ALU_AND: u16 = 0x50;
const JMP_JA: u16 = 0x00;
const JMP_JEQ: u16 = 0x10;
const JMP_JGT: u16 = 0x20;
const JMP_JGE: u16 = 0x30;
const JMP_JSET: u16 = 0x40;
const SOURCE_K: u16 = 0x00;

/// Where seccomp_data's fields are (linux/seccomp.h).
pub const OFFSET_NR: u32 = 0;
pub const OFFSET_ARCH: u32 = 4;

/// The kernel's AUDIT_ARCH_* values (linux/audit.h): machine number plus
/// the 64-bit and little-endian bits.
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
pub const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
pub const AUDIT_ARCH_AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;

/// The return values of a filter (linux/seccomp.h): the action in the high
/// 16 bits, its data (an errno) in the low 16.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;
const RET_DATA: u32 = 0x0000_ffff;

/// One system call as a filter sees it (struct seccomp_data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl Call {
    /// A call of the native architecture.
    pub fn native(nr: i64, args: [u64; 6]) -> Call {
        Call {
            nr: nr as i32,
            arch: super::native_audit_arch(),
            instruction_pointer: 0,
            args,
        }
    }

    /// The 64 bytes the kernel lays out, in the machine's byte order.
    fn bytes(&self) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        bytes[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        bytes[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (index, arg) in self.args.iter().enumerate() {
            let start = 16 + 8 * index;
            bytes[start..start + 8].copy_from_slice(&arg.to_ne_bytes());
        }
        bytes
    }
}

/// Run one program on one call: the value it returns, or why it is not a
/// program the kernel would have accepted.
pub fn run(program: &[sock_filter], call: &Call) -> Result<u32, String> {
    run_counting(program, call).map(|(ret, _)| ret)
}

/// [`run`], and how many instructions the program ran to give its answer
/// (what the kernel's interpreter or JIT works through for this call).
pub fn run_counting(program: &[sock_filter], call: &Call) -> Result<(u32, usize), String> {
    let data = call.bytes();
    let mut accumulator: u32 = 0;
    let mut pc = 0usize;
    let mut ran = 0usize;
    while let Some(instruction) = program.get(pc) {
        let k = instruction.k;
        pc += 1;
        ran += 1;
        match instruction.code {
            code if code == CLASS_LD | SIZE_WORD | MODE_ABS => {
                let start = k as usize;
                let word = data
                    .get(start..start + 4)
                    .filter(|_| start.is_multiple_of(4))
                    .ok_or_else(|| format!("load from offset {k} is outside seccomp_data"))?;
                accumulator = u32::from_ne_bytes(word.try_into().expect("four bytes"));
            }
            code if code == CLASS_ALU | ALU_AND | SOURCE_K => accumulator &= k,
            code if code == CLASS_JMP | JMP_JA => pc += k as usize,
            code if code & 0x07 == CLASS_JMP => {
                let taken = match code & 0xf0 {
                    JMP_JEQ => accumulator == k,
                    JMP_JGT => accumulator > k,
                    JMP_JGE => accumulator >= k,
                    JMP_JSET => accumulator & k != 0,
                    _ => return Err(format!("jump {code:#06x} is not one seccompiler emits")),
                };
                pc += usize::from(if taken {
                    instruction.jt
                } else {
                    instruction.jf
                });
            }
            code if code == CLASS_RET | SOURCE_K => return Ok((k, ran)),
            code => {
                return Err(format!(
                    "instruction {code:#06x} is not one seccompiler emits"
                ));
            }
        }
    }
    Err("the program runs off its end without returning".into())
}

/// Whether the kernel's action cache (Linux 5.11+, kernel/seccomp.c
/// `seccomp_is_const_allow`) marks call `nr` of architecture `arch` as
/// always allowed by this program, so that the program is not run for it
/// at all. The kernel decides it when the filter is loaded, by running the
/// program knowing only the number and the architecture: a path that
/// loads anything else (an argument, the instruction pointer) or meets an
/// instruction it does not follow is "not constant", and the call is
/// filtered on every use. This is that emulation, step for step.
pub fn always_allows(program: &[sock_filter], nr: i32, arch: u32) -> bool {
    let mut register: u32 = 0;
    let mut pc = 0usize;
    while let Some(instruction) = program.get(pc) {
        let k = instruction.k;
        match instruction.code {
            code if code == CLASS_LD | SIZE_WORD | MODE_ABS => match k {
                OFFSET_NR => register = nr as u32,
                OFFSET_ARCH => register = arch,
                _ => return false,
            },
            code if code == CLASS_RET | SOURCE_K => return k == RET_ALLOW,
            code if code == CLASS_JMP | JMP_JA => pc += k as usize,
            code if code & 0x07 == CLASS_JMP && code & 0x08 == SOURCE_K => {
                let taken = match code & 0xf0 {
                    JMP_JEQ => register == k,
                    JMP_JGE => register >= k,
                    JMP_JGT => register > k,
                    JMP_JSET => register & k != 0,
                    _ => return false,
                };
                pc += usize::from(if taken {
                    instruction.jt
                } else {
                    instruction.jf
                });
            }
            code if code == CLASS_ALU | ALU_AND | SOURCE_K => register &= k,
            _ => return false,
        }
        pc += 1;
    }
    false
}

/// The kernel's order among actions: the lower the action bits read as a
/// signed number, the stricter (seccomp(2): KILL_PROCESS > KILL_THREAD >
/// TRAP > ERRNO > USER_NOTIF > TRACE > LOG > ALLOW).
pub fn strictness(ret: u32) -> i32 {
    (ret & RET_ACTION_FULL) as i32
}

/// The answer of several filters for one call: the strictest wins; between
/// equals, the most recently loaded (the kernel walks the filters newest
/// first and only replaces its answer with a strictly stricter one).
pub fn combine(rets_in_load_order: impl DoubleEndedIterator<Item = u32>) -> u32 {
    let mut answer = RET_ALLOW;
    let mut first = true;
    for ret in rets_in_load_order.rev() {
        if first || strictness(ret) < strictness(answer) {
            answer = ret;
            first = false;
        }
    }
    answer
}

/// A return value as seccompiler's action.
pub fn action_of(ret: u32) -> SeccompAction {
    let data = ret & RET_DATA;
    match ret & RET_ACTION_FULL {
        RET_KILL_PROCESS => SeccompAction::KillProcess,
        RET_KILL_THREAD => SeccompAction::KillThread,
        RET_TRAP => SeccompAction::Trap,
        RET_ERRNO => SeccompAction::Errno(data),
        RET_TRACE => SeccompAction::Trace(data),
        RET_LOG => SeccompAction::Log,
        RET_ALLOW => SeccompAction::Allow,
        // The kernel treats an unknown action as KILL_PROCESS.
        _ => SeccompAction::KillProcess,
    }
}

/// `BPF_STMT` and `BPF_JUMP` of linux/filter.h.
pub fn statement(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

pub fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

pub const LOAD_WORD: u16 = CLASS_LD | SIZE_WORD | MODE_ABS;
pub const JUMP_IF_EQUAL: u16 = CLASS_JMP | JMP_JEQ | SOURCE_K;
pub const JUMP_IF_AT_LEAST: u16 = CLASS_JMP | JMP_JGE | SOURCE_K;
pub const RETURN: u16 = CLASS_RET | SOURCE_K;
pub const JUMP_ALWAYS: u16 = CLASS_JMP | JMP_JA;
