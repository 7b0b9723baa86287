//! cgroup v2's device rules: a small eBPF program the kernel runs at every
//! open(2) and mknod(2) of a device node by a process of the cgroup
//! (BPF_PROG_TYPE_CGROUP_DEVICE, Linux 4.15). cgroup v1 had files
//! (devices.allow, devices.deny); v2 has no device controller at all, only
//! this hook, which is why runc and crun carry a tiny compiler for it.
//!
//! The program reads the request from its context, `struct
//! bpf_cgroup_dev_ctx` (linux/bpf.h): `access_type` (the device type in
//! the low 16 bits, 1 block, 2 char; the access in the high 16: 1 mknod,
//! 2 read, 4 write), `major`, `minor`. Each rule becomes a block that
//! jumps to the next unless the request matches, then returns 1 (allow)
//! or 0 (deny). The blocks go in reverse order of the rules, so that the
//! last matching rule decides, as the v1 files' order did; a request no
//! rule matches is denied.

use crate::error::LabError;
use crate::oci::config::DeviceRule;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One instruction (struct bpf_insn): opcode, registers, offset, immediate.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Instruction {
    code: u8,
    registers: u8,
    offset: i16,
    immediate: i32,
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LOAD_WORD_FROM_MEMORY: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_32_IMMEDIATE: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const SHIFT_RIGHT_32_IMMEDIATE: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOVE_32_REGISTER: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOVE_64_IMMEDIATE: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JUMP_IF_NOT_EQUAL: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers: r1 holds the context; the request is loaded into r2-r5.
const CONTEXT: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;
const SCRATCH: u8 = 1;
const RESULT: u8 = 0;

fn instruction(code: u8, destination: u8, source: u8, offset: i16, immediate: i32) -> Instruction {
    Instruction {
        code,
        registers: (source << 4) | destination,
        offset,
        immediate,
    }
}

/// The access bits of `rwm`.
fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |bits, c| match c {
        'm' => bits | 1,
        'r' => bits | 2,
        'w' => bits | 4,
        _ => bits,
    })
}

// ANCHOR: compile
/// The program for `rules` (config.json's order; the last match wins).
pub fn compile(rules: &[DeviceRule]) -> Vec<Instruction> {
    let mut program = vec![
        instruction(LOAD_WORD_FROM_MEMORY, TYPE, CONTEXT, 0, 0),
        instruction(AND_32_IMMEDIATE, TYPE, 0, 0, 0xffff),
        instruction(LOAD_WORD_FROM_MEMORY, ACCESS, CONTEXT, 0, 0),
        instruction(SHIFT_RIGHT_32_IMMEDIATE, ACCESS, 0, 0, 16),
        instruction(LOAD_WORD_FROM_MEMORY, MAJOR, CONTEXT, 4, 0),
        instruction(LOAD_WORD_FROM_MEMORY, MINOR, CONTEXT, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let mut tests: Vec<(u8, i32)> = Vec::new();
        match rule.kind {
            'b' => tests.push((TYPE, 1)),
            'c' => tests.push((TYPE, 2)),
            _ => {}
        }
        if let Some(major) = rule.major.filter(|m| *m >= 0) {
            tests.push((MAJOR, major as i32));
        }
        if let Some(minor) = rule.minor.filter(|m| *m >= 0) {
            tests.push((MINOR, minor as i32));
        }
        let allowed = access_bits(&rule.access);
        let partial = allowed != 7;
        // Each test jumps over the rest of the block when it fails: the
        // block is its tests, the access check (3 instructions), and the
        // two that return.
        let block = tests.len() + if partial { 3 } else { 0 } + 2;
        for (at, (register, value)) in tests.iter().enumerate() {
            let skip = (block - at - 1) as i16;
            program.push(instruction(JUMP_IF_NOT_EQUAL, *register, 0, skip, *value));
        }
        if partial {
            // Every bit asked for must be one the rule allows.
            program.push(instruction(MOVE_32_REGISTER, SCRATCH, ACCESS, 0, 0));
            program.push(instruction(AND_32_IMMEDIATE, SCRATCH, 0, 0, !allowed & 7));
            program.push(instruction(JUMP_IF_NOT_EQUAL, SCRATCH, 0, 2, 0));
        }
        program.push(instruction(
            MOVE_64_IMMEDIATE,
            RESULT,
            0,
            0,
            rule.allow as i32,
        ));
        program.push(instruction(EXIT, 0, 0, 0, 0));
        // A rule that matches everything ends the program: the verifier
        // refuses code that can never run (the rules before it, and the
        // default).
        if tests.is_empty() && !partial {
            return program;
        }
    }
    program.push(instruction(MOVE_64_IMMEDIATE, RESULT, 0, 0, 0));
    program.push(instruction(EXIT, 0, 0, 0, 0));
    program
}
// ANCHOR_END: compile

/// What the program answers for a request (`kind` 'b' or 'c', `access`
/// bits): the interpreter the tests check the compiler against.
pub fn decide(program: &[Instruction], kind: char, access: i32, major: u32, minor: u32) -> bool {
    let context = [
        (access as u32) << 16 | if kind == 'b' { 1 } else { 2 },
        major,
        minor,
    ];
    let mut registers = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let insn = program[pc];
        let (dst, src) = (
            (insn.registers & 0xf) as usize,
            (insn.registers >> 4) as usize,
        );
        pc += 1;
        match insn.code {
            LOAD_WORD_FROM_MEMORY => registers[dst] = context[(insn.offset / 4) as usize] as u64,
            AND_32_IMMEDIATE => {
                registers[dst] = (registers[dst] as u32 & insn.immediate as u32) as u64
            }
            SHIFT_RIGHT_32_IMMEDIATE => {
                registers[dst] = ((registers[dst] as u32) >> insn.immediate) as u64
            }
            MOVE_32_REGISTER => registers[dst] = registers[src] as u32 as u64,
            MOVE_64_IMMEDIATE => registers[dst] = insn.immediate as i64 as u64,
            JUMP_IF_NOT_EQUAL => {
                if registers[dst] != insn.immediate as i64 as u64 {
                    pc += insn.offset as usize;
                }
            }
            EXIT => return registers[RESULT as usize] == 1,
            other => panic!("opcode {other:#x} is not one compile emits"),
        }
    }
}

// ANCHOR: attach
/// Load the program and attach it to the cgroup v2 directory `dir`
/// (bpf(2) BPF_PROG_LOAD, then BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI, so
/// that a parent's program still applies too). The kernel keeps it as long
/// as the cgroup exists.
pub fn attach(dir: &Path, rules: &[DeviceRule]) -> Result<(), LabError> {
    let program = compile(rules);
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 4096];
    // union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns,
    // license, log_level, log_size, log_buf (linux/bpf.h).
    #[repr(C)]
    struct ProgramLoad {
        program_type: u32,
        instruction_count: u32,
        instructions: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buffer: u64,
        rest: [u8; 96],
    }
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 2;
    let load = ProgramLoad {
        program_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        instruction_count: program.len() as u32,
        instructions: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buffer: log.as_mut_ptr() as u64,
        rest: [0; 96],
    };
    // SAFETY: bpf(2) reads the attribute and the buffers it points at,
    // which live until the call returns.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &load as *const ProgramLoad,
            std::mem::size_of::<ProgramLoad>(),
        )
    };
    if fd < 0 {
        let errno = nix::errno::Errno::last();
        let verifier = String::from_utf8_lossy(&log);
        return Err(LabError::StepFailed {
            syscall: "bpf",
            target: format!(
                "BPF_PROG_LOAD, the device rules of {}: {}",
                dir.display(),
                verifier.trim_end_matches('\0').trim()
            ),
            errno,
        });
    }
    // SAFETY: the kernel just returned this descriptor to us.
    let program_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cgroup = std::fs::File::open(dir).map_err(|e| LabError::io("open", dir.display(), e))?;
    #[repr(C)]
    struct ProgramAttach {
        target: u32,
        program: u32,
        attach_type: u32,
        flags: u32,
        rest: [u8; 104],
    }
    let attach = ProgramAttach {
        target: cgroup.as_raw_fd() as u32,
        program: program_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        flags: BPF_F_ALLOW_MULTI,
        rest: [0; 104],
    };
    // SAFETY: as above, one attribute read by the kernel.
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgramAttach,
            std::mem::size_of::<ProgramAttach>(),
        )
    };
    nix::errno::Errno::result(result)
        .map(drop)
        .map_err(|errno| LabError::StepFailed {
            syscall: "bpf",
            target: format!("BPF_PROG_ATTACH to {}", dir.display()),
            errno,
        })
}
// ANCHOR_END: attach

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: char,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    const READ: i32 = 2;
    const WRITE: i32 = 4;
    const MKNOD: i32 = 1;

    #[test]
    fn deny_all_then_allow_some_is_what_engines_send() {
        let program = compile(&[
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(136), None, "rw"),
            rule(true, 'c', None, None, "m"),
        ]);
        assert!(decide(&program, 'c', READ | WRITE, 1, 3), "/dev/null");
        assert!(
            !decide(&program, 'c', READ, 1, 5),
            "/dev/zero is not listed"
        );
        assert!(decide(&program, 'c', READ, 136, 7), "any pts");
        assert!(
            decide(&program, 'c', MKNOD, 254, 0),
            "mknod of any char node"
        );
        assert!(!decide(&program, 'b', READ, 254, 0), "a disk");
        assert!(!decide(&program, 'b', MKNOD, 8, 0), "mknod of a block node");
        assert!(!decide(&program, 'c', MKNOD | READ, 136, 1), "rw, not m");
    }

    #[test]
    fn the_last_matching_rule_decides() {
        let program = compile(&[
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'b', Some(8), None, "rwm"),
        ]);
        assert!(decide(&program, 'c', READ, 1, 3));
        assert!(!decide(&program, 'b', READ, 8, 1));
        let program = compile(&[
            rule(false, 'b', Some(8), None, "rwm"),
            rule(true, 'a', None, None, "rwm"),
        ]);
        assert!(decide(&program, 'b', READ, 8, 1));
    }

    #[test]
    fn nothing_follows_a_rule_that_matches_everything() {
        let program = compile(&[
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(false, 'a', None, None, "rwm"),
        ]);
        assert_eq!(program.len(), 6 + 2, "{program:?}");
        assert!(!decide(&program, 'c', READ, 1, 3));
    }

    #[test]
    fn no_rule_is_deny() {
        let program = compile(&[]);
        assert!(!decide(&program, 'c', READ, 1, 3));
    }
}
