//! Containerfile (Dockerfile) instructions: split into logical lines,
//! parsed, and applied to an image's run config.
//!
//! The subset the lab builds: FROM (one stage), ARG, RUN, COPY, ADD (local
//! files only), ENV, WORKDIR, USER, CMD, ENTRYPOINT, LABEL, EXPOSE. The
//! syntax is Docker's (the Dockerfile reference, "Format",
//! "Environment replacement"):
//!
//! - `#` starts a comment only at the start of a line, also between the
//!   lines of a continued instruction; a `\` at the end of a line joins the
//!   next one to it;
//! - `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alternative}` are
//!   replaced from ARG and ENV in FROM, COPY, ADD, ENV, ARG, WORKDIR,
//!   USER, LABEL and EXPOSE, never in RUN, CMD and ENTRYPOINT: there the
//!   shell of the container does it, at run time;
//! - quotes group words and are removed: `'...'` keeps everything as it
//!   is, `"..."` still replaces variables;
//! - RUN, CMD and ENTRYPOINT take a JSON array (the exec form, run as it
//!   is) or a line of text (the shell form, run by `/bin/sh -c`).
//!
//! An instruction is kept as text until the build reaches it, because what
//! its variables stand for depends on the steps before it; `parse` checks
//! every instruction's syntax up front, so that a typo on line 40 fails
//! the build before step 1 runs.

use super::spec::RunConfig;
use crate::error::LabError;
use std::collections::BTreeMap;

/// One instruction, as written: the line it starts on, its keyword
/// (uppercased) and the rest of its logical line.
#[derive(Clone, Debug, PartialEq)]
pub struct Instruction {
    pub line: usize,
    pub keyword: String,
    pub args: String,
}

/// A command: the exec form runs its words as they are; the shell form
/// is handed to `/bin/sh -c`.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

impl Command {
    /// The words a container runs.
    pub fn words(&self) -> Vec<String> {
        match self {
            Command::Exec(words) => words.clone(),
            Command::Shell(text) => vec!["/bin/sh".into(), "-c".into(), text.clone()],
        }
    }
}

/// An instruction with its variables replaced: what a build step does.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    From {
        image: String,
    },
    /// `ARG NAME[=DEFAULT] ...`
    Arg(Vec<(String, Option<String>)>),
    Run(Command),
    Copy {
        /// ADD rather than COPY.
        add: bool,
        chown: Option<String>,
        chmod: Option<u32>,
        sources: Vec<String>,
        dest: String,
    },
    Env(Vec<(String, String)>),
    Workdir(String),
    User(String),
    Cmd(Command),
    Entrypoint(Command),
    Label(Vec<(String, String)>),
    /// Ports as `80/tcp`.
    Expose(Vec<String>),
}

/// Instructions Docker knows that the lab does not build: refused by
/// name, not called unknown.
const NOT_SUPPORTED: [&str; 6] = [
    "MAINTAINER",
    "VOLUME",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "ONBUILD",
];

const SUPPORTED: [&str; 12] = [
    "FROM",
    "ARG",
    "RUN",
    "COPY",
    "ADD",
    "ENV",
    "WORKDIR",
    "USER",
    "CMD",
    "ENTRYPOINT",
    "LABEL",
    "EXPOSE",
];

/// A syntax error: the line it is on and why.
#[derive(Debug, PartialEq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl SyntaxError {
    /// As a lab error, naming the file: `Containerfile:7: unknown instruction X`.
    pub fn in_file(self, file: &str) -> LabError {
        LabError::Image {
            message: format!("{file}:{}: {}", self.line, self.message),
            hint: "the lab builds FROM, ARG, RUN, COPY, ADD, ENV, WORKDIR, USER, CMD, ENTRYPOINT, LABEL and EXPOSE (see `build --help`)".into(),
        }
    }
}

// ANCHOR: logical_lines
/// A Containerfile's instructions, each checked for syntax (with every
/// variable unset: their values are known only as the build goes).
pub fn parse(text: &str) -> Result<Vec<Instruction>, SyntaxError> {
    let mut instructions = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim_start();
        // A comment line, also inside a continued instruction (Docker
        // drops it there too); an empty line inside one is skipped.
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_some()) {
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        let (continued, body) = match raw.trim_end().strip_suffix('\\') {
            Some(body) => (true, body),
            None => (false, raw.trim_end()),
        };
        let (start, mut logical) = pending.take().unwrap_or((number, String::new()));
        logical.push_str(body);
        if continued {
            pending = Some((start, logical));
            continue;
        }
        instructions.push(instruction(start, &logical)?);
    }
    if let Some((start, logical)) = pending {
        // A `\` on the last line: the instruction ends with the file.
        instructions.push(instruction(start, &logical)?);
    }
    Ok(instructions)
}
// ANCHOR_END: logical_lines

fn instruction(line: usize, logical: &str) -> Result<Instruction, SyntaxError> {
    let logical = logical.trim();
    let (keyword, args) = logical
        .split_once(char::is_whitespace)
        .unwrap_or((logical, ""));
    let instruction = Instruction {
        line,
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_string(),
    };
    instruction.resolve(&|_| None)?;
    Ok(instruction)
}

impl Instruction {
    /// As `podman build` shows it: `RUN apk add x`.
    pub fn text(&self) -> String {
        format!("{} {}", self.keyword, self.args)
    }

    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: self.line,
            message: message.into(),
        }
    }

    // ANCHOR: resolve
    /// What the instruction does, its variables replaced by `vars`
    /// (ARG and ENV as they are at this step).
    pub fn resolve(&self, vars: &dyn Fn(&str) -> Option<String>) -> Result<Step, SyntaxError> {
        let keyword = self.keyword.as_str();
        if NOT_SUPPORTED.contains(&keyword) {
            return Err(self.error(format!(
                "unsupported instruction {keyword}: the lab builds a subset of the Dockerfile format"
            )));
        }
        if keyword.is_empty() || !SUPPORTED.contains(&keyword) {
            return Err(self.error(format!("unknown instruction {keyword}")));
        }
        if self.args.is_empty() {
            return Err(self.error(format!("{keyword} needs an argument")));
        }
        let lex = |text: &str| words(text, vars).map_err(|m| self.error(format!("{keyword}: {m}")));
        let one = |text: &str| word(text, vars).map_err(|m| self.error(format!("{keyword}: {m}")));
        Ok(match keyword {
            "FROM" => {
                let words = lex(&self.args)?;
                if words.iter().any(|w| w.starts_with("--")) {
                    return Err(self.error("FROM: flags (--platform) are not supported"));
                }
                match words.as_slice() {
                    [image] => Step::From {
                        image: image.clone(),
                    },
                    [_, r#as, _] if r#as.eq_ignore_ascii_case("as") => {
                        return Err(self.error(
                            "FROM ... AS NAME: multi-stage builds are not supported, one stage only",
                        ));
                    }
                    _ => return Err(self.error("FROM takes one image (or scratch)")),
                }
            }
            "ARG" => {
                let mut args = Vec::new();
                for word in lex(&self.args)? {
                    let (name, default) = match word.split_once('=') {
                        Some((name, value)) => (name.to_string(), Some(value.to_string())),
                        None => (word, None),
                    };
                    check_name(&name).map_err(|m| self.error(format!("ARG: {m}")))?;
                    args.push((name, default));
                }
                Step::Arg(args)
            }
            "RUN" => {
                if self.args.starts_with("--") {
                    return Err(self.error("RUN: flags (--mount, --network) are not supported"));
                }
                Step::Run(command(&self.args))
            }
            "CMD" => Step::Cmd(command(&self.args)),
            "ENTRYPOINT" => Step::Entrypoint(command(&self.args)),
            "COPY" | "ADD" => self.copy(keyword == "ADD", vars)?,
            "ENV" | "LABEL" => {
                let pairs =
                    pairs(&self.args, vars).map_err(|m| self.error(format!("{keyword}: {m}")))?;
                if keyword == "ENV" {
                    for (name, _) in &pairs {
                        check_name(name).map_err(|m| self.error(format!("ENV: {m}")))?;
                    }
                    Step::Env(pairs)
                } else {
                    Step::Label(pairs)
                }
            }
            "WORKDIR" => Step::Workdir(one(&self.args)?),
            "USER" => Step::User(one(&self.args)?),
            "EXPOSE" => {
                let mut ports = Vec::new();
                for word in lex(&self.args)? {
                    let (port, protocol) = word.split_once('/').unwrap_or((&word, "tcp"));
                    let protocol = protocol.to_ascii_lowercase();
                    if port.parse::<u16>().is_err() || !["tcp", "udp", "sctp"].contains(&&*protocol)
                    {
                        return Err(self.error(format!(
                            "EXPOSE {word}: a port is a number, optionally /tcp, /udp or /sctp"
                        )));
                    }
                    ports.push(format!("{port}/{protocol}"));
                }
                Step::Expose(ports)
            }
            _ => unreachable!("every supported keyword is handled"),
        })
    }
    // ANCHOR_END: resolve

    fn copy(&self, add: bool, vars: &dyn Fn(&str) -> Option<String>) -> Result<Step, SyntaxError> {
        let keyword = &self.keyword;
        let mut rest = self.args.as_str();
        let (mut chown, mut chmod) = (None, None);
        // Flags come first, each `--name=value`, as in Docker.
        while let Some(flag) = rest.strip_prefix("--") {
            let (flag, after) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
            rest = after.trim_start();
            let (name, value) = flag.split_once('=').unwrap_or((flag, ""));
            let value = word(value, vars).map_err(|m| self.error(format!("{keyword}: {m}")))?;
            match name {
                "chown" if !value.is_empty() => chown = Some(value),
                "chmod" => {
                    let mode = u32::from_str_radix(&value, 8)
                        .ok()
                        .filter(|mode| *mode <= 0o7777);
                    chmod = Some(mode.ok_or_else(|| {
                        self.error(format!(
                            "{keyword} --chmod={value}: an octal mode is expected (0644)"
                        ))
                    })?);
                }
                "from" => {
                    return Err(self.error(format!(
                        "{keyword} --from: multi-stage builds are not supported, one stage only"
                    )));
                }
                _ => {
                    return Err(self.error(format!(
                        "{keyword} --{name}: unknown flag (--chown=USER[:GROUP] and --chmod=MODE are known)"
                    )));
                }
            }
        }
        let words = match json_array(rest) {
            Some(words) => words
                .iter()
                .map(|w| substitute(w, vars))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| self.error(format!("{keyword}: {m}")))?,
            None => words(rest, vars).map_err(|m| self.error(format!("{keyword}: {m}")))?,
        };
        let Some((dest, sources)) = words.split_last().filter(|(_, s)| !s.is_empty()) else {
            return Err(self.error(format!("{keyword} needs a source and a destination")));
        };
        if let Some(url) = sources.iter().find(|s| s.contains("://")) {
            return Err(self.error(format!(
                "{keyword} {url}: URLs are not supported (a build step has no network): download it into the build context and COPY it"
            )));
        }
        if sources.len() > 1 && !dest.ends_with('/') {
            return Err(self.error(format!(
                "{keyword} with several sources: the destination {dest} must be a directory, ending with /"
            )));
        }
        Ok(Step::Copy {
            add,
            chown,
            chmod,
            sources: sources.to_vec(),
            dest: dest.clone(),
        })
    }
}

/// An ENV or ARG name: what a shell takes as a variable name.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first = chars.next().ok_or("a name cannot be empty")?;
    match (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        true => Ok(()),
        false => Err(format!(
            "{name:?} is not a variable name (letters, digits and _)"
        )),
    }
}

/// `["a", "b"]`: the exec form, when the text is a JSON array of strings.
/// Anything else is the shell form (Docker's rule: no error for bad JSON).
fn json_array(text: &str) -> Option<Vec<String>> {
    match text.trim_start().starts_with('[') {
        true => serde_json::from_str(text).ok(),
        false => None,
    }
}

fn command(text: &str) -> Command {
    json_array(text).map_or_else(|| Command::Shell(text.to_string()), Command::Exec)
}

/// `K=V K2="v 2"` (or the old `K V...`: one name, the rest of the line
/// its value), for ENV and LABEL.
fn pairs(
    text: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, String> {
    let first = text.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (name, value) = text
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{text} needs a value: NAME=VALUE or NAME VALUE"))?;
        return Ok(vec![(word(name, vars)?, word(value.trim(), vars)?)]);
    }
    words(text, vars)?
        .into_iter()
        .map(|pair| match pair.split_once('=') {
            Some(("", _)) => Err(format!("{pair}: the name is empty")),
            Some((name, value)) => Ok((name.to_string(), value.to_string())),
            None => Err(format!("{pair} has no =: write NAME=VALUE")),
        })
        .collect()
}

// ANCHOR: substitution
/// Words of `text`, split at unquoted blanks, quotes removed and
/// variables replaced (Docker's shell-like word processing).
pub fn words(text: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, String> {
    lex(text, vars, true)
}

/// All of `text` as one word: quotes removed, variables replaced, blanks
/// kept (WORKDIR, USER, a value of the old `ENV K V` form).
pub fn word(text: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    Ok(lex(text, vars, false)?
        .into_iter()
        .next()
        .unwrap_or_default())
}

/// Variables replaced, quotes and backslashes kept as they are (a JSON
/// form's strings, already unquoted by JSON).
fn substitute(text: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str(&variable(&mut chars, vars)?),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn lex(
    text: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    split: bool,
) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if split && c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let word = word.get_or_insert_default();
                loop {
                    match chars.next().ok_or("unterminated single quote")? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                word.get_or_insert_default();
                loop {
                    match chars.next().ok_or("unterminated double quote")? {
                        '"' => break,
                        '\\' => match chars.next().ok_or("unterminated double quote")? {
                            c @ ('"' | '\\' | '$') => word.as_mut().unwrap().push(c),
                            c => word.as_mut().unwrap().extend(['\\', c]),
                        },
                        '$' => {
                            let value = variable(&mut chars, vars)?;
                            word.as_mut().unwrap().push_str(&value);
                        }
                        c => word.as_mut().unwrap().push(c),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_default().push(c),
                None => word.get_or_insert_default().push('\\'),
            },
            '$' => {
                let value = variable(&mut chars, vars)?;
                // An unquoted variable that is unset or empty adds no
                // word of its own, as in sh.
                if !value.is_empty() || word.is_some() {
                    word.get_or_insert_default().push_str(&value);
                }
            }
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// After a `$`: `NAME`, `{NAME}`, `{NAME:-default}`, `{NAME:+alternative}`
/// (and `-`, `+` without the colon: unset only, not empty). A `$` before
/// anything else is itself.
fn variable(
    chars: &mut std::iter::Peekable<std::str::Chars>,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let is_name = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
    if chars.peek() != Some(&'{') {
        let mut name = String::new();
        while let Some(c) = chars.next_if(is_name) {
            name.push(c);
        }
        return Ok(match name.is_empty() {
            true => "$".into(),
            false => vars(&name).unwrap_or_default(),
        });
    }
    chars.next();
    let mut name = String::new();
    while let Some(c) = chars.next_if(is_name) {
        name.push(c);
    }
    let mut operator = String::new();
    while let Some(c) = chars.next_if(|c| matches!(c, ':' | '-' | '+')) {
        operator.push(c);
    }
    let mut word = String::new();
    let mut depth = 0;
    loop {
        match chars.next().ok_or(format!("${{{name}: missing }}"))? {
            '}' if depth == 0 => break,
            '}' => {
                depth -= 1;
                word.push('}');
            }
            '{' => {
                depth += 1;
                word.push('{');
            }
            '$' => word.push_str(&variable(chars, vars)?),
            c => word.push(c),
        }
    }
    if name.is_empty() {
        return Err("${} names no variable".into());
    }
    let value = vars(&name);
    Ok(match operator.as_str() {
        "" if word.is_empty() => value.unwrap_or_default(),
        ":-" => value.filter(|v| !v.is_empty()).unwrap_or(word),
        "-" => value.unwrap_or(word),
        ":+" => match value.filter(|v| !v.is_empty()) {
            Some(_) => word,
            None => String::new(),
        },
        "+" => value.map(|_| word).unwrap_or_default(),
        _ => {
            return Err(format!(
                "${{{name}{operator}{word}}}: unsupported substitution"
            ));
        }
    })
}
// ANCHOR_END: substitution

/// `NAME=VALUE` set in an environment list, replacing NAME's old value.
pub fn set_env(env: &mut Vec<String>, name: &str, value: &str) {
    let entry = format!("{name}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == name)
    {
        Some(old) => *old = entry,
        None => env.push(entry),
    }
}

/// The value of NAME in an environment list.
pub fn env_value(env: &[String], name: &str) -> Option<String> {
    env.iter()
        .filter_map(|e| e.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

/// `a/./b/../c` -> `/a/c`: a container path, absolute and clean, `..`
/// stopping at `/` as it does in a root.
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

// ANCHOR: apply
/// A metadata step applied to a run config: ENV, WORKDIR, USER, CMD,
/// ENTRYPOINT, LABEL, EXPOSE. Other steps change nothing here.
pub fn apply(step: &Step, config: &mut RunConfig) {
    match step {
        Step::Env(pairs) => {
            let env = config.env.get_or_insert_default();
            for (name, value) in pairs {
                set_env(env, name, value);
            }
        }
        // A relative WORKDIR continues the one before (Docker's rule).
        Step::Workdir(dir) => {
            let base = match dir.starts_with('/') {
                true => String::new(),
                false => config.working_dir.clone().unwrap_or_default(),
            };
            config.working_dir = Some(clean_path(&format!("{base}/{dir}")));
        }
        Step::User(user) => config.user = Some(user.clone()),
        Step::Cmd(command) => config.cmd = Some(command.words()),
        Step::Entrypoint(command) => config.entrypoint = Some(command.words()),
        Step::Label(pairs) => {
            let labels = config.labels.get_or_insert_default();
            for (name, value) in pairs {
                labels.insert(name.clone(), value.clone());
            }
        }
        Step::Expose(ports) => {
            let exposed = config.exposed_ports.get_or_insert_default();
            for port in ports {
                exposed.insert(port.clone(), serde_json::json!({}));
            }
        }
        Step::From { .. } | Step::Arg(_) | Step::Run(_) | Step::Copy { .. } => {}
    }
}
// ANCHOR_END: apply

/// A change to a run config, as `commit -c` takes it: one instruction.
pub type ConfigChange = Box<dyn Fn(&mut RunConfig)>;

/// The instructions `commit -c` takes: those that change only the config.
const CONFIG_ONLY: [&str; 7] = [
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "WORKDIR",
    "USER",
    "LABEL",
    "EXPOSE",
];

/// `commit -c 'CMD ["/bin/sh"]'`: one config instruction. Its variables
/// are replaced from the image's own environment when it is applied.
pub fn config_change(text: &str) -> Result<ConfigChange, LabError> {
    let refused = |message: String| LabError::Usage {
        message: format!("-c {text:?}: {message}"),
    };
    let mut instructions = parse(text).map_err(|e| refused(e.message))?;
    let instruction = match (instructions.pop(), instructions.is_empty()) {
        (Some(instruction), true) => instruction,
        _ => return Err(refused("give one instruction per -c".into())),
    };
    if !CONFIG_ONLY.contains(&instruction.keyword.as_str()) {
        return Err(refused(format!(
            "{} cannot be a config change: -c takes {}",
            instruction.keyword,
            CONFIG_ONLY.join(", ")
        )));
    }
    Ok(Box::new(move |config: &mut RunConfig| {
        let env = config.env.clone().unwrap_or_default();
        // parse() checked the syntax; with variables set, only the values
        // can differ, so this does not fail.
        if let Ok(step) = instruction.resolve(&|name| env_value(&env, name)) {
            apply(&step, config);
        }
    }))
}

/// A lookup table for `resolve`: ENV over ARG, as Docker gives them.
pub fn lookup<'a>(
    env: &'a [String],
    args: &'a BTreeMap<String, String>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| env_value(env, name).or_else(|| args.get(name).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/root".into()),
            "EMPTY" => Some(String::new()),
            "V" => Some("1.2".into()),
            _ => None,
        }
    }

    fn resolved(text: &str) -> Step {
        let instructions = parse(text).unwrap();
        instructions[0].resolve(&vars).unwrap()
    }

    fn error(text: &str) -> String {
        let error = parse(text).unwrap_err();
        format!("{}: {}", error.line, error.message)
    }

    #[test]
    fn logical_lines_join_continuations_and_skip_comments() {
        let text = "# syntax comment\n\nFROM base\nRUN echo a \\\n  # a comment inside\n\n  && echo b\nenv A=1\n";
        let instructions = parse(text).unwrap();
        assert_eq!(instructions.len(), 3);
        assert_eq!(instructions[0].line, 3);
        assert_eq!(instructions[1].line, 4);
        assert_eq!(instructions[1].args, "echo a   && echo b");
        assert_eq!(instructions[2].keyword, "ENV");
        assert_eq!(instructions[2].line, 8);
    }

    #[test]
    fn errors_name_the_line_and_the_instruction() {
        assert_eq!(
            error("FROM x\n\n# c\nRUN true\n\nCOPY a b\nFROBNICATE now\n"),
            "7: unknown instruction FROBNICATE"
        );
        assert_eq!(
            error("FROM x\nVOLUME /data"),
            "2: unsupported instruction VOLUME: the lab builds a subset of the Dockerfile format"
        );
        assert_eq!(
            error("FROM x\nCOPY onlyone"),
            "2: COPY needs a source and a destination"
        );
        assert_eq!(
            error("FROM a AS b"),
            "1: FROM ... AS NAME: multi-stage builds are not supported, one stage only"
        );
        assert!(error("ADD https://example.com/x.tar /x").contains("URLs are not supported"));
        assert!(error("COPY --from=b /x /y").contains("one stage only"));
        assert!(error("EXPOSE http").contains("a port is a number"));
        assert!(error("ENV A=\"unterminated").contains("unterminated double quote"));
        assert!(error("ENV 1A=x").contains("not a variable name"));
        assert!(error("COPY a b c").contains("must be a directory, ending with /"));
        let lab = SyntaxError {
            line: 7,
            message: "unknown instruction X".into(),
        }
        .in_file("Containerfile");
        assert_eq!(lab.to_string(), "Containerfile:7: unknown instruction X");
    }

    #[test]
    fn commands_take_the_exec_or_the_shell_form() {
        assert_eq!(
            resolved(r#"CMD ["/bin/echo", "hi $HOME"]"#),
            Step::Cmd(Command::Exec(vec!["/bin/echo".into(), "hi $HOME".into()]))
        );
        // No substitution: the container's shell does it.
        let Step::Entrypoint(command) = resolved("ENTRYPOINT echo $HOME") else {
            panic!()
        };
        assert_eq!(command.words(), ["/bin/sh", "-c", "echo $HOME"]);
        // Not valid JSON: the shell form, as Docker takes it.
        assert_eq!(
            resolved("RUN [oops"),
            Step::Run(Command::Shell("[oops".into()))
        );
    }

    #[test]
    fn env_takes_both_forms_with_quotes_and_variables() {
        assert_eq!(
            resolved(r#"ENV A=1 B="two words" C='$HOME' D=$HOME E=${V}-x F=\$V"#),
            Step::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "$HOME".into()),
                ("D".into(), "/root".into()),
                ("E".into(), "1.2-x".into()),
                ("F".into(), "$V".into()),
            ])
        );
        assert_eq!(
            resolved("ENV GREETING hello   big world"),
            Step::Env(vec![("GREETING".into(), "hello   big world".into())])
        );
    }

    #[test]
    fn defaults_and_alternatives_follow_sh() {
        let one = |text: &str| word(text, &vars).unwrap();
        assert_eq!(one("${NOPE:-fallback}"), "fallback");
        assert_eq!(one("${EMPTY:-fallback}"), "fallback");
        assert_eq!(one("${EMPTY-fallback}"), "");
        assert_eq!(one("${V:+set}"), "set");
        assert_eq!(one("${NOPE:+set}"), "");
        assert_eq!(one("cost: $ 5"), "cost: $ 5");
        assert_eq!(one("${NOPE:-$HOME/x}"), "/root/x");
        assert!(word("${V", &vars).is_err());
    }

    #[test]
    fn copy_takes_flags_json_and_variables() {
        assert_eq!(
            resolved("COPY --chown=app:app --chmod=640 conf/$V/ ${HOME}/"),
            Step::Copy {
                add: false,
                chown: Some("app:app".into()),
                chmod: Some(0o640),
                sources: vec!["conf/1.2/".into()],
                dest: "/root/".into(),
            }
        );
        assert_eq!(
            resolved(r#"ADD ["a b", "c", "/d/"]"#),
            Step::Copy {
                add: true,
                chown: None,
                chmod: None,
                sources: vec!["a b".into(), "c".into()],
                dest: "/d/".into(),
            }
        );
    }

    #[test]
    fn metadata_steps_change_the_config() {
        let mut config = RunConfig::default();
        for text in [
            "ENV PATH=/bin A=1",
            "ENV A=2",
            "WORKDIR /app",
            "WORKDIR sub/../src",
            "USER 1000:1000",
            "LABEL version=1.0 \"maintainer\"=\"me\"",
            "EXPOSE 80 53/udp",
            "ENTRYPOINT [\"/bin/tini\"]",
            "CMD echo hi",
        ] {
            apply(&resolved(text), &mut config);
        }
        assert_eq!(config.env.as_deref().unwrap(), ["PATH=/bin", "A=2"]);
        assert_eq!(config.working_dir.as_deref(), Some("/app/src"));
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        assert_eq!(config.labels.as_ref().unwrap()["maintainer"], "me");
        let ports: Vec<&String> = config.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        assert_eq!(config.entrypoint.as_deref().unwrap(), ["/bin/tini"]);
        assert_eq!(config.cmd.as_deref().unwrap(), ["/bin/sh", "-c", "echo hi"]);
        apply(&resolved("WORKDIR /"), &mut config);
        assert_eq!(config.working_dir.as_deref(), Some("/"));
    }

    #[test]
    fn arg_declares_names_with_optional_defaults() {
        assert_eq!(
            resolved("ARG A B=${V}"),
            Step::Arg(vec![("A".into(), None), ("B".into(), Some("1.2".into()))])
        );
    }

    #[test]
    fn commit_changes_take_config_instructions_only() {
        let change = config_change(r#"CMD ["/bin/echo","hi"]"#).unwrap_or_else(|_| panic!());
        let mut config = RunConfig {
            env: Some(vec!["HOME=/home/me".into()]),
            ..RunConfig::default()
        };
        change(&mut config);
        assert_eq!(config.cmd.as_deref().unwrap(), ["/bin/echo", "hi"]);
        let change = config_change("WORKDIR $HOME").unwrap_or_else(|_| panic!());
        change(&mut config);
        assert_eq!(config.working_dir.as_deref(), Some("/home/me"));
        for refused in ["RUN rm -rf /", "FROM x", "CMD a\nCMD b", "BOGUS x"] {
            let error = config_change(refused).err().unwrap().to_string();
            assert!(error.starts_with("-c "), "{error}");
        }
    }
}
