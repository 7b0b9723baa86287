//! A seccomp profile in Docker's JSON format (which is also the shape of the
//! OCI runtime spec's `linux.seccomp`), as serde types, and what a profile
//! means on this machine: its `includes`/`excludes` resolved against the
//! container's capabilities, the native architecture and the kernel release.
//!
//! Field names and action, operator and architecture spellings are those of
//! Docker's and the OCI spec's documentation; unknown top-level fields are
//! ignored (Docker's files carry more than a runtime reads), unknown values
//! are refused with the file, line, column and field.

use crate::error::LabError;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::path::Path;

/// A whole profile: what happens to a call no rule names, and the rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// What a call that matches no rule gets.
    pub default_action: Action,
    /// The errno of `SCMP_ACT_ERRNO` where a rule gives none (EPERM if unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// The OCI spec's list of architectures (`SCMP_ARCH_X86_64`, ...).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub architectures: Vec<Arch>,
    /// Docker's way to say the same per native architecture.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arch_map: Vec<ArchMapEntry>,
    /// seccomp(2)'s SECCOMP_FILTER_FLAG_* to load every program with.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<FilterFlag>,
    /// Where a seccomp agent listens for SCMP_ACT_NOTIFY: this runtime has
    /// no agent, so a profile that names one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    /// The rules, in the file's order (which does not matter: see the module
    /// doc of `seccomp` for how several matching rules combine).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub syscalls: Vec<SyscallRule>,
}

/// One entry of Docker's `archMap`: a native architecture and the others its
/// kernel also runs (32-bit x86 and x32 on x86_64).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapEntry {
    pub architecture: Arch,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sub_architectures: Vec<Arch>,
}

/// One rule: these calls, when their arguments match, get this action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub names: Vec<String>,
    /// The single-name form of Docker's first profiles (before 1.12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub action: Action,
    /// The errno of SCMP_ACT_ERRNO (or the message of SCMP_ACT_TRACE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Conditions on the arguments, all of which must hold.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<ArgCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The rule applies only when all of these hold.
    #[serde(default, skip_serializing_if = "Scope::is_empty")]
    pub includes: Scope,
    /// The rule does not apply when any of these holds.
    #[serde(default, skip_serializing_if = "Scope::is_empty")]
    pub excludes: Scope,
}

/// Docker's `includes` / `excludes`: when a rule applies. Resolved by
/// Docker's daemon before the profile reaches runc; resolved here the same
/// way by `Scope::admits` and `Scope::rejects`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// Capability names (`CAP_SYS_ADMIN`) the container holds.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub caps: Vec<String>,
    /// Native architectures in Go's spelling (`amd64`, `arm64`, `s390x`).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arches: Vec<GoArch>,
    /// A kernel release, `major.minor`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "kernel_version"
    )]
    pub min_kernel: Option<String>,
}

/// One condition on an argument: `args[index] OP value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArgCondition {
    pub index: ArgIndex,
    pub value: u64,
    /// Only SCMP_CMP_MASKED_EQ uses it: `(arg & value) == valueTwo`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value_two: u64,
    pub op: CompareOp,
}

/// Which of a call's six arguments (0..=5) a condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArgIndex(pub u8);

impl<'de> Deserialize<'de> for ArgIndex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let index = u64::deserialize(deserializer)?;
        // seccomp_data carries six arguments: the ABI has no seventh.
        if index > 5 {
            return Err(de::Error::custom(format!(
                "argument index {index} is out of range: a system call has arguments 0 to 5"
            )));
        }
        Ok(ArgIndex(index as u8))
    }
}

/// The comparisons libseccomp defines, with its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    #[serde(rename = "SCMP_CMP_LT")]
    Less,
    #[serde(rename = "SCMP_CMP_LE")]
    LessOrEqual,
    #[serde(rename = "SCMP_CMP_EQ")]
    Equal,
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterOrEqual,
    #[serde(rename = "SCMP_CMP_GT")]
    Greater,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

/// What the kernel does with a call. The errno (or trace message) is not
/// part of the action: it is the rule's `errnoRet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Errno,
    KillThread,
    KillProcess,
    Trap,
    Trace,
    Log,
}

impl Action {
    pub const NAMES: &'static [&'static str] = &[
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
    ];

    fn name(self) -> &'static str {
        match self {
            Action::Allow => "SCMP_ACT_ALLOW",
            Action::Errno => "SCMP_ACT_ERRNO",
            // SCMP_ACT_KILL is libseccomp's older name for the same action.
            Action::KillThread => "SCMP_ACT_KILL_THREAD",
            Action::KillProcess => "SCMP_ACT_KILL_PROCESS",
            Action::Trap => "SCMP_ACT_TRAP",
            Action::Trace => "SCMP_ACT_TRACE",
            Action::Log => "SCMP_ACT_LOG",
        }
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(match name.as_str() {
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_ERRNO" => Action::Errno,
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_TRACE" => Action::Trace,
            "SCMP_ACT_LOG" => Action::Log,
            // A real action, which this runtime cannot honour: it would need
            // an agent on the other end of the notification fd.
            "SCMP_ACT_NOTIFY" => {
                return Err(de::Error::custom(
                    "SCMP_ACT_NOTIFY needs a seccomp agent to answer the notifications (listenerPath), and this runtime has none: use SCMP_ACT_ERRNO or SCMP_ACT_LOG",
                ));
            }
            other => return Err(de::Error::unknown_variant(other, Action::NAMES)),
        })
    }
}

/// libseccomp's architecture names. Only the native one is compiled (see
/// the module doc of `seccomp`); the others are known so that Docker's
/// archMap parses, and refused names are typos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(non_camel_case_types)]
pub enum Arch {
    #[serde(rename = "SCMP_ARCH_NATIVE")]
    Native,
    #[serde(rename = "SCMP_ARCH_X86")]
    X86,
    #[serde(rename = "SCMP_ARCH_X86_64")]
    X86_64,
    #[serde(rename = "SCMP_ARCH_X32")]
    X32,
    #[serde(rename = "SCMP_ARCH_ARM")]
    Arm,
    #[serde(rename = "SCMP_ARCH_AARCH64")]
    Aarch64,
    #[serde(rename = "SCMP_ARCH_MIPS")]
    Mips,
    #[serde(rename = "SCMP_ARCH_MIPS64")]
    Mips64,
    #[serde(rename = "SCMP_ARCH_MIPS64N32")]
    Mips64N32,
    #[serde(rename = "SCMP_ARCH_MIPSEL")]
    MipsEl,
    #[serde(rename = "SCMP_ARCH_MIPSEL64")]
    MipsEl64,
    #[serde(rename = "SCMP_ARCH_MIPSEL64N32")]
    MipsEl64N32,
    #[serde(rename = "SCMP_ARCH_PPC")]
    Ppc,
    #[serde(rename = "SCMP_ARCH_PPC64")]
    Ppc64,
    #[serde(rename = "SCMP_ARCH_PPC64LE")]
    Ppc64Le,
    #[serde(rename = "SCMP_ARCH_S390")]
    S390,
    #[serde(rename = "SCMP_ARCH_S390X")]
    S390X,
    #[serde(rename = "SCMP_ARCH_PARISC")]
    Parisc,
    #[serde(rename = "SCMP_ARCH_PARISC64")]
    Parisc64,
    #[serde(rename = "SCMP_ARCH_RISCV64")]
    Riscv64,
    #[serde(rename = "SCMP_ARCH_LOONGARCH64")]
    Loongarch64,
    #[serde(rename = "SCMP_ARCH_M68K")]
    M68k,
    #[serde(rename = "SCMP_ARCH_SH")]
    Sh,
    #[serde(rename = "SCMP_ARCH_SHEB")]
    Sheb,
}

/// Architectures as Go (and so Docker's `includes.arches`) spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GoArch {
    Amd64,
    X86,
    #[serde(rename = "386")]
    I386,
    X32,
    Arm,
    Arm64,
    Mips,
    Mipsle,
    Mips64,
    Mips64le,
    Mips64n32,
    Mips64len32,
    Ppc,
    Ppc64,
    Ppc64le,
    S390,
    S390x,
    Riscv64,
    Loong64,
}

/// seccomp(2)'s flags that make sense without a notification agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterFlag {
    /// Every thread of the process gets the filter (ours has one thread).
    #[serde(rename = "SECCOMP_FILTER_FLAG_TSYNC")]
    ThreadSync,
    /// Log every action but ALLOW to the audit log.
    #[serde(rename = "SECCOMP_FILTER_FLAG_LOG")]
    Log,
    /// Keep speculative store bypass unmitigated (a speed/safety trade).
    #[serde(rename = "SECCOMP_FILTER_FLAG_SPEC_ALLOW")]
    SpecAllow,
}

impl FilterFlag {
    /// The bit seccomp(2) takes (linux/seccomp.h).
    pub fn bit(self) -> libc::c_ulong {
        match self {
            FilterFlag::ThreadSync => 1,
            FilterFlag::Log => 2,
            FilterFlag::SpecAllow => 4,
        }
    }
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

fn kernel_version<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let version = Option::<String>::deserialize(deserializer)?;
    if let Some(text) = &version
        && crate::hostinfo::parse_kernel_version(text).is_none()
    {
        return Err(de::Error::custom(format!(
            "kernel version {text:?} is not major.minor (such as \"4.8\")"
        )));
    }
    Ok(version)
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Scope {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// What a profile's conditions are checked against: the container about to
/// start, on this machine.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The capabilities the container will hold (`CAP_CHOWN`, ...).
    pub capabilities: &'a [&'a str],
    /// The running kernel, `(major, minor)`.
    pub kernel: (u32, u32),
    /// The native architecture, in Go's spelling (`amd64`, `arm64`).
    pub arch: GoArch,
}

impl GoArch {
    /// Whether `self` names the native architecture `native`: Docker's files
    /// say `x86` and `386` for the same 32-bit x86.
    fn names(self, native: GoArch) -> bool {
        self == native
            || matches!(
                (self, native),
                (GoArch::X86, GoArch::I386) | (GoArch::I386, GoArch::X86)
            )
    }
}

fn kernel_at_least(kernel: (u32, u32), version: &str) -> bool {
    crate::hostinfo::parse_kernel_version(version).is_some_and(|wanted| kernel >= wanted)
}

impl Scope {
    /// `includes`: every capability held, the native architecture listed, a
    /// kernel at least this recent (each only if given).
    pub fn admits(&self, target: &Target<'_>) -> bool {
        self.caps
            .iter()
            .all(|cap| target.capabilities.contains(&cap.as_str()))
            && (self.arches.is_empty() || self.arches.iter().any(|arch| arch.names(target.arch)))
            && self
                .min_kernel
                .as_deref()
                .is_none_or(|version| kernel_at_least(target.kernel, version))
    }

    /// `excludes`: any capability held, the native architecture listed, or a
    /// kernel at least this recent.
    pub fn rejects(&self, target: &Target<'_>) -> bool {
        self.caps
            .iter()
            .any(|cap| target.capabilities.contains(&cap.as_str()))
            || self.arches.iter().any(|arch| arch.names(target.arch))
            || self
                .min_kernel
                .as_deref()
                .is_some_and(|version| kernel_at_least(target.kernel, version))
    }
}

impl SyscallRule {
    /// The rule's names, from `names` and the older `name` alike.
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(String::as_str)
            .chain(self.name.as_deref())
    }

    /// Whether the rule is part of the filter for this container, the way
    /// Docker's daemon decides before it hands the profile to runc.
    pub fn applies_to(&self, target: &Target<'_>) -> bool {
        self.includes.admits(target) && !self.excludes.rejects(target)
    }
}

impl Profile {
    /// Read a profile from a JSON file. A profile that does not parse is a
    /// usage error naming the file, the line and column, and the field
    /// (`syscalls[2].action`).
    pub fn from_file(path: &Path) -> Result<Profile, LabError> {
        // A profile is a small regular file: not a FIFO that blocks the run
        // for ever, nor /dev/zero that fills memory (Docker's is 20 KiB).
        const LARGEST: u64 = 4 << 20;
        let refuse = |why: &str| LabError::Refused {
            message: format!("seccomp profile {}: {why}", path.display()),
            hint: "give the path of a profile in Docker's JSON format, or seccomp=unconfined"
                .into(),
        };
        if let Ok(metadata) = std::fs::metadata(path) {
            if !metadata.is_file() {
                return Err(refuse("not a regular file"));
            }
            if metadata.len() > LARGEST {
                return Err(refuse(&format!(
                    "{} bytes, over the {} MiB a profile may have",
                    metadata.len(),
                    LARGEST >> 20
                )));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|error| LabError::Refused {
            message: format!(
                "seccomp profile {}: {}",
                path.display(),
                crate::error::describe_errno(crate::error::errno_of(&error))
            ),
            hint: "give the path of a profile in Docker's JSON format, or seccomp=unconfined"
                .into(),
        })?;
        Profile::from_json(&text).map_err(|message| LabError::Refused {
            message: format!("seccomp profile {}, {message}", path.display()),
            hint: "fix that field (Docker's format: defaultAction, syscalls[].names/action/args), or run with --security-opt seccomp=unconfined".into(),
        })
    }

    /// Parse a profile from JSON text; the error reads
    /// `line 7 column 19: syscalls[2].action: unknown variant ...`.
    pub fn from_json(text: &str) -> Result<Profile, String> {
        let mut json = serde_json::Deserializer::from_str(text);
        let profile: Profile = serde_path_to_error::deserialize(&mut json).map_err(|error| {
            let field = error.path().to_string();
            let inner = error.into_inner();
            // serde_json's message ends with " at line L column C": say
            // where first, then what, as compilers do.
            let location = format!(" at line {} column {}", inner.line(), inner.column());
            let what = inner.to_string();
            let what = what.strip_suffix(&location).unwrap_or(&what).to_string();
            let field = if field == "." {
                String::new()
            } else {
                format!("{field}: ")
            };
            format!(
                "line {} column {}: {field}{what}",
                inner.line(),
                inner.column()
            )
        })?;
        json.end().map_err(|error| error.to_string())?;
        profile.check()?;
        Ok(profile)
    }

    /// What serde cannot check field by field.
    fn check(&self) -> Result<(), String> {
        if self
            .listener_path
            .as_deref()
            .is_some_and(|path| !path.is_empty())
        {
            return Err(
                "listenerPath: this runtime has no seccomp agent to hand notifications to".into(),
            );
        }
        for (position, rule) in self.syscalls.iter().enumerate() {
            if rule.all_names().next().is_none() {
                return Err(format!("syscalls[{position}]: a rule names no system call"));
            }
            for (which, arg) in rule.args.iter().enumerate() {
                // libseccomp compares (arg & value) with valueTwo: a bit of
                // valueTwo outside the mask can never match, so the rule
                // could never apply. That is a mistake in the profile.
                if arg.op == CompareOp::MaskedEqual && arg.value_two & !arg.value != 0 {
                    return Err(format!(
                        "syscalls[{position}].args[{which}]: valueTwo {:#x} has bits outside the mask {:#x}, so SCMP_CMP_MASKED_EQ can never match",
                        arg.value_two, arg.value
                    ));
                }
            }
        }
        Ok(())
    }

    /// The profile as JSON in Docker's format, to start one's own from.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a profile always serializes")
    }
}
