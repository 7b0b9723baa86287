//! `build`: an image from a Containerfile, one step at a time, as
//! `docker build` (2013) and `buildah bud` make it.
//!
//! Each step starts from the image the step before it made:
//!
//! | step | how | layer |
//! |---|---|---|
//! | FROM | the image in the store (or none: `scratch`) | its own |
//! | RUN | a ch08 container of the current image runs the command; `commit` keeps what it changed | one |
//! | COPY, ADD | a tar of the sources, from the build context, unpacked as a layer | one |
//! | ENV, WORKDIR, USER, CMD, ENTRYPOINT, LABEL, EXPOSE | the config changes | none (`empty_layer` in the history) |
//! | ARG | a variable for the steps after it | no image |
//!
//! Every step that makes an image also writes a cache entry:
//! sha256(parent image id, the instruction with its variables replaced,
//! and what else the step reads: the sources' names, modes, owners and
//! content for COPY, the build args it sees for RUN) -> the image it made.
//! A rebuild whose step finds its key reuses the image and runs nothing;
//! the first step whose key changed makes a new image, and so every step
//! after it has a new parent: why the steps that change least go first.
//!
//! The cache is `STORE/build-cache.json`, written whole under the store's
//! lock and renamed into place. An entry whose image is gone (rmi, image
//! prune) is a miss. Intermediate images are untagged, so `image prune`
//! removes them, and with them the cache of every step but the last:
//! Docker keeps them as the parents of the final image, but the lab's
//! images have no parent link.

use super::archive::{Added, ExactSize, KeptLayer, parse_tag, unpack_and_keep};
use super::commit::{CommitRequest, child_image, commit};
use super::containerfile::{self, Command, Instruction, Step, clean_path};
use super::digest::{Digest, HashingWriter};
use super::manage::lower_dirs;
use super::reference::Reference;
use super::spec::{History, RunConfig};
use super::store::{ImageRecord, ImageStore};
use super::verbs::BuildArgs;
use crate::error::LabError;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn image_error(message: impl Into<String>, hint: &str) -> LabError {
    LabError::Image {
        message: message.into(),
        hint: hint.into(),
    }
}

// ANCHOR: build
/// `build -t NAME[:TAG] CONTEXT`: every step of the Containerfile, from
/// the cache when it can be, the new image's id on stdout.
pub fn build(store: &ImageStore, args: &BuildArgs) -> Result<i32, LabError> {
    // Everything that can be refused is refused before a step runs.
    let tag = args.tag.as_deref().map(parse_tag).transpose()?;
    let build_args = build_arg_values(&args.build_args)?;
    let context = std::fs::canonicalize(&args.context)
        .ok()
        .filter(|c| c.is_dir())
        .ok_or_else(|| {
            image_error(
                format!(
                    "build context {}: no such directory",
                    args.context.display()
                ),
                "the last argument is the directory whose files COPY reads (often .)",
            )
        })?;
    // Opened once: every file of the context is found from this
    // descriptor, never by a path that a symlink could lead out of it.
    let root = Arc::new(
        open(
            &context,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| LabError::io("open", context.display(), e.into()))?,
    );
    let (text, shown) = containerfile_text(args, &root)?;
    let instructions = containerfile::parse(&text).map_err(|e| e.in_file(&shown))?;
    check_stages(&instructions, &shown)?;
    let ignore = Ignore::read(&root)?;
    let mut build = Build {
        store,
        args,
        file: shown,
        context,
        root,
        ignore,
        cache: Cache::read(store),
        image: None,
        config: RunConfig::default(),
        build_args,
        global_args: BTreeMap::new(),
        args_in_scope: BTreeMap::new(),
        used_args: BTreeSet::new(),
        cmd_set: false,
        seen_from: false,
        total: instructions.len(),
    };
    for (index, instruction) in instructions.iter().enumerate() {
        build.step(index + 1, instruction)?;
    }
    let unused: Vec<&String> = build
        .build_args
        .keys()
        .filter(|name| !build.used_args.contains(*name))
        .collect();
    if !unused.is_empty() && !args.quiet {
        crate::say!("[Warning] one or more build-args {unused:?} were not consumed");
    }
    let Some(image) = build.image else {
        return Err(image_error(
            format!(
                "{}: FROM scratch with no other step makes no image",
                build.file
            ),
            "add a COPY (or any other step) after FROM scratch",
        ));
    };
    let shown_tag = tag.as_ref().and_then(Reference::tagged);
    if let Some(tag) = &tag {
        let _lock = store.lock()?;
        store.add_image(&image, std::slice::from_ref(tag))?;
    }
    if !args.quiet {
        crate::say!("COMMIT {}", shown_tag.as_deref().unwrap_or(""));
        crate::say!("--> {}", image.id.short());
        if let Some(tag) = &shown_tag {
            crate::say!("Successfully tagged {tag}");
        }
    }
    println!("{}", image.id);
    Ok(0)
}
// ANCHOR_END: build

/// The text of `-f FILE` (from the current directory, as docker's: the
/// user's own choice, wherever it is), else of CONTEXT/Containerfile, else
/// CONTEXT/Dockerfile, found inside the context (a symlink there followed
/// only within it); and how errors name it.
fn containerfile_text(args: &BuildArgs, root: &OwnedFd) -> Result<(String, String), LabError> {
    if let Some(file) = &args.file {
        let shown = file.display().to_string();
        return match file.is_file() {
            true => std::fs::read_to_string(file)
                .map(|text| (text, shown.clone()))
                .map_err(|e| LabError::io("read", &shown, e)),
            false => Err(image_error(
                format!("-f {shown}: no such file"),
                "give the Containerfile's path, from the current directory",
            )),
        };
    }
    for name in ["Containerfile", "Dockerfile"] {
        let shown = args.context.join(name).display().to_string();
        if let Some(text) = read_in_root(root, name).map_err(|e| LabError::io("read", &shown, e))? {
            return Ok((text, shown));
        }
    }
    Err(image_error(
        format!(
            "no Containerfile or Dockerfile in {}",
            args.context.display()
        ),
        "write one there, or name it with -f FILE",
    ))
}

/// One stage: ARGs, then one FROM, then the rest.
fn check_stages(instructions: &[Instruction], file: &str) -> Result<(), LabError> {
    let refuse = |line: usize, message: &str| containerfile::SyntaxError {
        line,
        message: message.into(),
    };
    let mut froms = instructions.iter().filter(|i| i.keyword == "FROM");
    match instructions.iter().find(|i| i.keyword != "ARG") {
        Some(first) if first.keyword != "FROM" => {
            return Err(refuse(
                first.line,
                "the first instruction must be FROM (ARGs may come before it)",
            )
            .in_file(file));
        }
        None => return Err(refuse(1, "no FROM: nothing to build on").in_file(file)),
        _ => {}
    }
    froms.next();
    if let Some(second) = froms.next() {
        return Err(refuse(
            second.line,
            "a second FROM: multi-stage builds are not supported, one stage only",
        )
        .in_file(file));
    }
    Ok(())
}

/// `--build-arg K=V` (K alone: its value from this environment, as docker's).
fn build_arg_values(given: &[String]) -> Result<BTreeMap<String, String>, LabError> {
    let mut values = BTreeMap::new();
    for arg in given {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => match std::env::var(arg) {
                Ok(value) => (arg.clone(), value),
                Err(_) => continue,
            },
        };
        if name.is_empty() {
            return Err(LabError::Usage {
                message: format!("--build-arg {arg:?}: write NAME=VALUE"),
            });
        }
        values.insert(name, value);
    }
    Ok(values)
}

/// The state of a build between two steps.
struct Build<'a> {
    store: &'a ImageStore,
    args: &'a BuildArgs,
    /// The Containerfile, as errors name it.
    file: String,
    context: PathBuf,
    /// The context, opened once (O_PATH): what COPY reads is found from it.
    root: Arc<OwnedFd>,
    ignore: Ignore,
    cache: Cache,
    /// What the last step made (None: FROM scratch, so far).
    image: Option<ImageRecord>,
    config: RunConfig,
    build_args: BTreeMap<String, String>,
    /// ARGs declared before FROM: seen by FROM, and as defaults of the
    /// same ARGs declared again after it (Docker's scoping).
    global_args: BTreeMap<String, String>,
    args_in_scope: BTreeMap<String, String>,
    used_args: BTreeSet<String>,
    /// A CMD was given in this file: ENTRYPOINT then keeps it; otherwise
    /// ENTRYPOINT drops the base image's CMD (Docker's rule).
    cmd_set: bool,
    seen_from: bool,
    total: usize,
}

impl Build<'_> {
    fn say(&self, line: std::fmt::Arguments) {
        if !self.args.quiet {
            crate::say!("{line}");
        }
    }

    // ANCHOR: step
    fn step(&mut self, number: usize, instruction: &Instruction) -> Result<(), LabError> {
        let heading = format!("STEP {number}/{}: {}", self.total, instruction.text());
        self.say(format_args!("{heading}"));
        let env = self.config.env.clone().unwrap_or_default();
        let vars = match !self.seen_from {
            true => &self.global_args,
            false => &self.args_in_scope,
        };
        let step = instruction
            .resolve(&containerfile::lookup(&env, vars))
            .map_err(|e| e.in_file(&self.file))?;
        // An error of this step, named as podman names it.
        let total = self.total;
        let at = |error: LabError| {
            let at = format!(
                "building at STEP {number}/{}: {}",
                total,
                instruction.text()
            );
            match error {
                LabError::Image { message, hint } => LabError::Image {
                    message: format!("{at}: {message}"),
                    hint,
                },
                other => image_error(format!("{at}: {other}"), &other.hint().unwrap_or_default()),
            }
        };
        let parent = self
            .image
            .as_ref()
            .map_or("scratch".to_string(), |i| i.id.to_string());
        match &step {
            Step::From { image } => self.from(image).map_err(at),
            Step::Arg(declared) => {
                self.declare(declared);
                Ok(())
            }
            Step::Run(command) => {
                let seen = self.run_args();
                let key = cache_key(&parent, &format!("{step:?}"), &format!("{seen:?}"));
                self.cached_or(&key, |build| build.run(command, instruction, &seen))
                    .map_err(at)
            }
            Step::Copy { .. } => {
                let plan = self.copy_plan(&step).map_err(at)?;
                let content = plan.digest().map_err(at)?;
                let key = cache_key(&parent, &format!("{step:?}"), &content.to_string());
                self.cached_or(&key, |build| build.copy(&plan, instruction))
                    .map_err(at)
            }
            _ => {
                let key = cache_key(&parent, &format!("{step:?}"), "");
                self.cached_or(&key, |build| build.metadata(&step, instruction))
                    .map_err(at)?;
                self.cmd_set |= matches!(step, Step::Cmd(_));
                Ok(())
            }
        }
    }
    // ANCHOR_END: step

    fn from(&mut self, image: &str) -> Result<(), LabError> {
        if image == "scratch" {
            self.image = None;
            self.config = RunConfig::default();
        } else {
            let record = self.store.find(image).map_err(|e| {
                image_error(
                    e.to_string(),
                    "FROM names an image in the store: pull, load or import it first",
                )
            })?;
            self.set_image(record)?;
        }
        // ARGs before FROM must be declared again to be seen after it.
        self.args_in_scope.clear();
        self.seen_from = true;
        Ok(())
    }

    fn declare(&mut self, declared: &[(String, Option<String>)]) {
        let before_from = !self.seen_from;
        for (name, default) in declared {
            let value = self
                .build_args
                .get(name)
                .cloned()
                .or(default.clone())
                .or_else(|| self.global_args.get(name).cloned());
            if self.build_args.contains_key(name) {
                self.used_args.insert(name.clone());
            }
            let scope = match before_from {
                true => &mut self.global_args,
                false => &mut self.args_in_scope,
            };
            if let Some(value) = value {
                scope.insert(name.clone(), value);
            }
        }
    }

    /// The ARGs a RUN sees as environment variables: those in scope that
    /// no ENV of the image sets.
    fn run_args(&self) -> Vec<(String, String)> {
        let env = self.config.env.clone().unwrap_or_default();
        self.args_in_scope
            .iter()
            .filter(|(name, _)| containerfile::env_value(&env, name).is_none())
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    fn set_image(&mut self, record: ImageRecord) -> Result<(), LabError> {
        self.config = self
            .store
            .read_config(&record.id)?
            .config
            .unwrap_or_default();
        self.image = Some(record);
        Ok(())
    }

    /// The cached image of `key`, or a new one made by `make`.
    fn cached_or(
        &mut self,
        key: &str,
        make: impl FnOnce(&mut Self) -> Result<ImageRecord, LabError>,
    ) -> Result<(), LabError> {
        let cached = match self.args.no_cache {
            true => None,
            false => self.cache.get(self.store, key),
        };
        let record = match cached {
            Some(record) => {
                self.say(format_args!("--> Using cache {}", record.id.hex()));
                record
            }
            None => {
                let record = make(self)?;
                self.cache.put(self.store, key, &record.id)?;
                record
            }
        };
        self.say(format_args!("--> {}", record.id.short()));
        self.set_image(record)
    }

    /// A new image of the current one, `layer` on top, `change` applied to
    /// its config: added, untagged; on failure, what it added is removed.
    fn child(
        &self,
        layer: impl FnOnce(&mut Added) -> Result<Option<KeptLayer>, LabError>,
        created_by: String,
        change: impl FnOnce(&mut RunConfig),
    ) -> Result<ImageRecord, LabError> {
        let _lock = self.store.lock()?;
        let mut added = Added::default();
        let result = (|| {
            let layer = layer(&mut added)?;
            let history = History {
                created_by: Some(created_by),
                ..History::default()
            };
            let record = child_image(
                self.store,
                self.image.as_ref(),
                layer,
                history,
                None,
                change,
                &mut added,
            )?;
            self.store.add_image(&record, &[])?;
            Ok(record)
        })();
        added.remove_unused(
            self.store,
            result
                .as_ref()
                .map(std::slice::from_ref)
                .unwrap_or_default(),
        );
        result
    }

    fn metadata(&self, step: &Step, instruction: &Instruction) -> Result<ImageRecord, LabError> {
        let drop_cmd = matches!(step, Step::Entrypoint(_)) && !self.cmd_set;
        self.child(
            |_| Ok(None),
            format!("/bin/sh -c #(nop) {}", instruction.text()),
            |config| {
                containerfile::apply(step, config);
                if drop_cmd {
                    config.cmd = None;
                }
            },
        )
    }

    // ANCHOR: run
    /// RUN: the chapter's own `run`, as a child process, in a container of
    /// the current image with no network (unless --network), the build
    /// args in its environment; then `commit` of what it changed. The
    /// container is removed whatever happens.
    fn run(
        &self,
        command: &Command,
        instruction: &Instruction,
        seen: &[(String, String)],
    ) -> Result<ImageRecord, LabError> {
        let Some(image) = &self.image else {
            return Err(image_error(
                "RUN needs a base image with the command's programs, not scratch",
                "build FROM an image that has a shell",
            ));
        };
        let name = format!(
            "build-{}-{:x}",
            std::process::id(),
            crate::runtime::state::now() & 0xffff_ffff
        );
        let _container = Removed(name.clone());
        let exe =
            std::env::current_exe().map_err(|e| LabError::io("readlink", "/proc/self/exe", e))?;
        let mut child = std::process::Command::new(&exe);
        // Every value is glued to its flag (`--env=K=V`), and `--` ends
        // the options: after it the image id and the command's words are
        // positional, so an exec-form RUN whose words look like flags
        // (`RUN ["-v", "/:/host", ...]`) runs them as the command, never
        // as options of `run`.
        child.args(["run", "--name", &name]);
        child.arg(format!("--net={}", self.args.network));
        for (key, value) in seen {
            child.arg(format!("--env={key}={value}"));
        }
        // RUN ignores the image's ENTRYPOINT, as docker build does.
        child.args(["--entrypoint=", "--", &image.id.to_string()]);
        child.args(command.words());
        child.stdin(std::process::Stdio::null());
        // The command's output goes to stderr: stdout is for the id.
        let status = match self.args.quiet {
            false => {
                let stderr = std::io::stderr()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| LabError::io("dup", "stderr", e))?;
                child
                    .stdout(std::process::Stdio::from(stderr))
                    .status()
                    .map_err(|e| LabError::io("exec", exe.display(), e))?
            }
            true => {
                let output = child
                    .output()
                    .map_err(|e| LabError::io("exec", exe.display(), e))?;
                if !output.status.success() {
                    let _ = std::io::stderr().write_all(&output.stdout);
                    let _ = std::io::stderr().write_all(&output.stderr);
                }
                output.status
            }
        };
        match status.code() {
            Some(0) => {}
            Some(code) => {
                return Err(image_error(
                    format!("exited with {code}"),
                    "the command's own output is above; nothing of this step was kept",
                ));
            }
            None => {
                return Err(image_error(
                    format!("killed by {status}"),
                    "nothing of this step was kept",
                ));
            }
        }
        let created_by = match command {
            Command::Shell(text) => format!("/bin/sh -c {text}"),
            Command::Exec(words) => words.join(" "),
        };
        let _ = instruction;
        let request = CommitRequest {
            container: &name,
            tag: None,
            message: None,
            author: None,
            created_by: Some(created_by),
            changes: vec![],
            pause: false,
        };
        let (record, _) = commit(self.store, &request)?;
        Ok(record)
    }
    // ANCHOR_END: run

    /// COPY, ADD: the plan's tar, written by a thread into a pipe, kept
    /// as the layer (as `import` keeps a directory).
    fn copy(&self, plan: &CopyPlan, instruction: &Instruction) -> Result<ImageRecord, LabError> {
        let layer = |added: &mut Added| {
            let (reader, writer) = std::io::pipe().map_err(|e| LabError::io("pipe", "copy", e))?;
            let entries = plan.entries.clone();
            let writing = std::thread::spawn(move || {
                let mut builder =
                    tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, writer));
                write_entries(&mut builder, &entries, true)
                    .and_then(|()| builder.into_inner()?.flush())
            });
            let unpacked = unpack_and_keep(self.store, reader, None, added);
            let written = writing.join().expect("the tar writer does not panic");
            match (written, unpacked) {
                (Err(error), _) => Err(image_error(
                    error.to_string(),
                    "a source could not be read all the way; nothing was stored",
                )),
                (Ok(()), unpacked) => unpacked.map(Some),
            }
        };
        self.child(
            layer,
            format!("/bin/sh -c #(nop) {}", instruction.text()),
            |_| {},
        )
    }

    // ANCHOR: copy_plan
    /// What COPY puts where: every source, resolved in the build context
    /// (refused if it leaves it), walked without following symlinks, minus
    /// what the ignore file excludes, under its place in the image.
    fn copy_plan(&self, step: &Step) -> Result<CopyPlan, LabError> {
        let Step::Copy {
            add,
            chown,
            chmod,
            sources,
            dest,
        } = step
        else {
            unreachable!("copy_plan is for COPY and ADD")
        };
        let view = View {
            layers: self
                .image
                .as_ref()
                .map(|i| lower_dirs(self.store, i))
                .unwrap_or_default(),
        };
        let owner = match chown {
            Some(spec) => view.owner(spec)?,
            None => (0, 0),
        };
        let workdir = self.config.working_dir.clone().unwrap_or_default();
        let wanted = match dest.starts_with('/') {
            true => dest.clone(),
            false => format!("{workdir}/{dest}"),
        };
        let into_dir = dest.ends_with('/')
            || dest.ends_with("/.")
            || dest == "."
            || sources.len() > 1
            || view.is_dir(&clean_path(&wanted));
        let dest = view.resolve(&clean_path(&wanted));
        let mut plan = CopyPlan::default();
        for source in self.expand(sources)? {
            let (relative, fd, stat) = self.source(&source)?;
            let shown = self.context.join(&relative);
            let is_dir = kind_of(&stat) == SFlag::S_IFDIR;
            let found = Found {
                name: None,
                stat,
                shown: shown.clone(),
            };
            let fd = Arc::new(fd);
            if *add && is_archive(&relative, &found.source(&fd)) {
                return Err(image_error(
                    format!("ADD {source}: unpacking archives is not supported"),
                    "COPY the archive, then RUN tar -xf it",
                ));
            }
            let target = match (is_dir, into_dir) {
                (true, _) => dest.clone(),
                (false, true) => {
                    // The name is the source's own, the content its target's.
                    let name = Path::new(&relative)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned());
                    clean_path(&format!("{dest}/{}", name.unwrap_or_default()))
                }
                (false, false) => dest.clone(),
            };
            if is_dir {
                let walk = Walk {
                    ignore: &self.ignore,
                    top: fd.clone(),
                    owner,
                    chmod: *chmod,
                };
                let dir = reopen_dir(&fd, &shown)?;
                plan.add_dir_contents(&walk, &dir, Path::new(""), &relative, &target)?;
            } else {
                plan.add(&found, &fd, &target, owner, *chmod)?;
            }
        }
        // The directories on the way: as the image has them, so that a
        // COPY into /tmp leaves /tmp's mode alone; new ones 0755.
        let paths: Vec<String> = plan.entries.keys().cloned().collect();
        for path in paths {
            let mut parent = Path::new(&path).parent();
            while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
                let dir_text = dir.to_string_lossy().into_owned();
                plan.entries.entry(dir_text.clone()).or_insert_with(|| {
                    match view.lstat(&format!("/{dir_text}")) {
                        Some(meta) if meta.is_dir() => Entry::dir(&Owned::from(&meta), None, None),
                        _ => Entry::new_directory(owner),
                    }
                });
                parent = dir.parent();
            }
        }
        if let Some(dir) = dest.strip_prefix('/').filter(|d| !d.is_empty())
            && !plan.entries.contains_key(dir)
            && into_dir
        {
            plan.entries
                .insert(dir.to_string(), Entry::new_directory(owner));
        }
        Ok(plan)
    }
    // ANCHOR_END: copy_plan

    /// Sources with `*`, `?` or `[` are patterns, matched against the
    /// context's (not ignored) paths.
    fn expand(&self, sources: &[String]) -> Result<Vec<String>, LabError> {
        let mut expanded = Vec::new();
        for source in sources {
            if !source.contains(['*', '?', '[']) {
                expanded.push(source.clone());
                continue;
            }
            let pattern: Vec<String> = split(&clean_path(source));
            let mut matches = Vec::new();
            let mut pending = vec![String::new()];
            while let Some(dir) = pending.pop() {
                let found = in_root(
                    &self.root,
                    &dir,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                    ResolveFlag::RESOLVE_IN_ROOT,
                );
                let Ok(mut entries) = found.and_then(nix::dir::Dir::from_fd) else {
                    continue;
                };
                for entry in entries.iter().flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name == "." || name == ".." {
                        continue;
                    }
                    let relative = match dir.is_empty() {
                        true => name,
                        false => format!("{dir}/{name}"),
                    };
                    if self.ignore.excluded(&relative) {
                        continue;
                    }
                    let parts = split(&relative);
                    if glob(&pattern, &parts) {
                        matches.push(relative.clone());
                    }
                    if parts.len() < pattern.len()
                        && entry.file_type() == Some(nix::dir::Type::Directory)
                    {
                        pending.push(relative);
                    }
                }
            }
            if matches.is_empty() {
                return Err(image_error(
                    format!("{source}: no file in the build context matches"),
                    "COPY reads from the build context (the last argument of build)",
                ));
            }
            matches.sort();
            expanded.extend(matches);
        }
        Ok(expanded)
    }

    /// A source in the build context, refused if it is not: `..` out of
    /// it, an absolute path, or a symlink that points out.
    fn source(&self, source: &str) -> Result<(String, OwnedFd, FileStat), LabError> {
        let hint = "COPY and ADD read only the build context (the last argument of build): copy the file into it";
        if source.starts_with('/') {
            return Err(image_error(
                format!("{source}: an absolute path is outside the build context"),
                hint,
            ));
        }
        let mut depth: i32 = 0;
        for part in source.split('/') {
            match part {
                "" | "." => {}
                ".." => depth -= 1,
                _ => depth += 1,
            }
            if depth < 0 {
                return Err(image_error(
                    format!("{source}: the path leaves the build context"),
                    hint,
                ));
            }
        }
        let relative = clean_path(source);
        let relative = relative.trim_start_matches('/');
        if !relative.is_empty() && self.ignore.excluded(relative) {
            return Err(image_error(
                format!("{source}: excluded by {}", self.ignore.file),
                "remove its pattern from the ignore file to copy it",
            ));
        }
        // Symlinks are followed inside the context only, as if it were
        // `/` (RESOLVE_IN_ROOT, Docker's rule): one that points out finds
        // nothing, and is named for what it is.
        let found = in_root(
            &self.root,
            relative,
            OFlag::O_PATH,
            ResolveFlag::RESOLVE_IN_ROOT,
        );
        let fd = match found {
            Ok(fd) => fd,
            Err(Errno::ENOENT)
                if in_root(
                    &self.root,
                    relative,
                    OFlag::O_PATH,
                    ResolveFlag::RESOLVE_BENEATH,
                )
                .err()
                    == Some(Errno::EXDEV) =>
            {
                return Err(image_error(
                    format!("{source}: a symlink that points outside the build context"),
                    hint,
                ));
            }
            Err(Errno::ENOENT | Errno::ENOTDIR) => {
                return Err(image_error(
                    format!("{source}: no such file or directory in the build context"),
                    hint,
                ));
            }
            Err(e) => {
                return Err(LabError::io(
                    "open",
                    self.context.join(relative).display(),
                    e.into(),
                ));
            }
        };
        let stat = fstat(&fd)
            .map_err(|e| LabError::io("stat", self.context.join(relative).display(), e.into()))?;
        Ok((relative.to_string(), fd, stat))
    }
}

fn cache_key(parent: &str, step: &str, reads: &str) -> String {
    Digest::of(format!("{parent}\n{step}\n{reads}").as_bytes())
        .hex()
        .to_string()
}

/// `relative` opened from the context's descriptor, resolved as
/// `resolve` says (RESOLVE_IN_ROOT: symlinks followed as if the context
/// were `/`; RESOLVE_BENEATH: refused if it leaves it), never through a
/// /proc magic link.
fn in_root(
    root: &OwnedFd,
    relative: &str,
    flags: OFlag,
    resolve: ResolveFlag,
) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(resolve | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let relative = match relative.trim_start_matches('/') {
        "" => ".",
        relative => relative,
    };
    openat2(root, relative, how)
}

/// A regular file of the context, its symlinks followed inside it only;
/// None if there is none (or it is not a regular file).
fn read_in_root(root: &OwnedFd, name: &str) -> std::io::Result<Option<String>> {
    // O_PATH first: opening a FIFO or a device to read is itself a harm.
    let found = match in_root(root, name, OFlag::O_PATH, ResolveFlag::RESOLVE_IN_ROOT) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if kind_of(&fstat(&found)?) != SFlag::S_IFREG {
        return Ok(None);
    }
    let stat = fstat(&found)?;
    let file = Source {
        at: Arc::new(found),
        under: None,
        shown: PathBuf::from(name),
        identity: Identity::of(&stat),
    };
    let mut text = String::new();
    let mut opened = file.open()?;
    opened.read_to_string(&mut text)?;
    Ok(Some(text))
}

fn kind_of(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

/// A directory of an O_PATH descriptor, opened to be read.
fn reopen_dir(fd: &OwnedFd, shown: &Path) -> Result<OwnedFd, LabError> {
    openat(
        fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| LabError::io("open", shown.display(), e.into()))
}

/// What tells a file from another, or from itself changed: read when it
/// is planned, checked each time it is opened to be read and after.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(stat: &FileStat) -> Identity {
        Identity {
            dev: stat.st_dev,
            ino: stat.st_ino,
            size: stat.st_size,
            mtime: (stat.st_mtime, stat.st_mtime_nsec),
            ctime: (stat.st_ctime, stat.st_ctime_nsec),
        }
    }
}

/// Where a file's content is read from: `under` (a path with no symlink
/// in it) beneath the directory `at`, or `at` itself (None). Its identity
/// is checked every time, so both reads (the cache's digest, the layer)
/// read the file that was planned, or the step fails.
#[derive(Clone, Debug)]
struct Source {
    at: Arc<OwnedFd>,
    under: Option<PathBuf>,
    /// As errors name it.
    shown: PathBuf,
    identity: Identity,
}

impl Source {
    fn open(&self) -> std::io::Result<std::fs::File> {
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let opened = match &self.under {
            Some(under) => {
                let how = OpenHow::new().flags(flags).resolve(
                    ResolveFlag::RESOLVE_BENEATH
                        | ResolveFlag::RESOLVE_NO_SYMLINKS
                        | ResolveFlag::RESOLVE_NO_MAGICLINKS,
                );
                openat2(&*self.at, under.as_path(), how)
            }
            // The O_PATH descriptor itself, opened again to read.
            None => open(
                format!("/proc/self/fd/{}", self.at.as_raw_fd()).as_str(),
                flags,
                Mode::empty(),
            ),
        }
        .map_err(|e| self.error(std::io::Error::from(e)))?;
        let file = std::fs::File::from(opened);
        self.unchanged(&file)?;
        Ok(file)
    }

    /// The file open is the one planned, as it was.
    fn unchanged(&self, file: &std::fs::File) -> std::io::Result<()> {
        let stat = fstat(file).map_err(|e| self.error(e.into()))?;
        match kind_of(&stat) == SFlag::S_IFREG && Identity::of(&stat) == self.identity {
            true => Ok(()),
            false => Err(self.error(std::io::Error::other(
                "changed (or was replaced) while the build read it",
            ))),
        }
    }

    fn error(&self, e: std::io::Error) -> std::io::Error {
        std::io::Error::new(e.kind(), format!("{}: {e}", self.shown.display()))
    }
}

/// An entry found by the walk (or a source named by the step), as its
/// descriptor's fstat saw it.
struct Found {
    /// Its path beneath the walk's top directory (None: the top itself).
    name: Option<PathBuf>,
    stat: FileStat,
    shown: PathBuf,
}

impl Found {
    fn source(&self, at: &Arc<OwnedFd>) -> Source {
        Source {
            at: at.clone(),
            under: self.name.clone(),
            shown: self.shown.clone(),
            identity: Identity::of(&self.stat),
        }
    }
}

/// A tar or a compressed tar, which Docker's ADD would unpack.
fn is_archive(name: &str, source: &Source) -> bool {
    let by_name = [".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.zst", ".tar.bz2"]
        .iter()
        .any(|suffix| name.ends_with(suffix));
    let mut head = [0u8; 262];
    let ustar = source
        .open()
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[257..262] == b"ustar";
    by_name || ustar
}

/// The container of a RUN step, removed (`rm -f`) when dropped: after the
/// commit, after a failure, after an error of ours.
struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        if let Ok(exe) = std::env::current_exe() {
            let _ = std::process::Command::new(exe)
                .args(["rm", "-f", &self.0])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// One entry of a COPY layer.
#[derive(Clone, Debug)]
struct Entry {
    /// Where a file's content is read from.
    source: Option<Source>,
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    size: u64,
}

/// A directory's mode, owners and mtime, from std's metadata or fstat.
struct Owned {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

impl From<&std::fs::Metadata> for Owned {
    fn from(meta: &std::fs::Metadata) -> Owned {
        Owned {
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.mtime(),
        }
    }
}

impl From<&FileStat> for Owned {
    fn from(stat: &FileStat) -> Owned {
        Owned {
            mode: stat.st_mode,
            uid: stat.st_uid,
            gid: stat.st_gid,
            mtime: stat.st_mtime,
        }
    }
}

impl Entry {
    /// A directory the step makes: 0755, owned as the copied files.
    fn new_directory(owner: (u32, u32)) -> Entry {
        Entry {
            source: None,
            kind: Kind::Dir,
            mode: 0o755,
            uid: owner.0,
            gid: owner.1,
            mtime: 0,
            size: 0,
        }
    }

    fn dir(meta: &Owned, owner: Option<(u32, u32)>, chmod: Option<u32>) -> Entry {
        let (uid, gid) = owner.unwrap_or((meta.uid, meta.gid));
        Entry {
            source: None,
            kind: Kind::Dir,
            mode: chmod.unwrap_or(meta.mode & 0o7777),
            uid,
            gid,
            mtime: meta.mtime.max(0) as u64,
            size: 0,
        }
    }
}

/// What a walk of a copied directory keeps the same from one entry to
/// the next.
struct Walk<'a> {
    ignore: &'a Ignore,
    /// The directory the step names, its files read beneath it.
    top: Arc<OwnedFd>,
    owner: (u32, u32),
    chmod: Option<u32>,
}

/// Path in the image (no leading /) -> entry; sorted, so that a
/// directory comes before what it holds.
#[derive(Default)]
struct CopyPlan {
    entries: BTreeMap<String, Entry>,
}

impl CopyPlan {
    /// One entry, a file read from beneath `at`; a symlink's target is
    /// read (from the directory `dir` holding it) now, not followed.
    fn add(
        &mut self,
        found: &Found,
        at: &Arc<OwnedFd>,
        target: &str,
        owner: (u32, u32),
        chmod: Option<u32>,
    ) -> Result<(), LabError> {
        self.add_in(found, at, None, target, owner, chmod)
    }

    fn add_in(
        &mut self,
        found: &Found,
        at: &Arc<OwnedFd>,
        link: Option<(&OwnedFd, &std::ffi::OsStr)>,
        target: &str,
        owner: (u32, u32),
        chmod: Option<u32>,
    ) -> Result<(), LabError> {
        let stat = &found.stat;
        let kind = match kind_of(stat) {
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFREG => Kind::File,
            SFlag::S_IFLNK => {
                let Some((dir, name)) = link else {
                    return Ok(());
                };
                Kind::Symlink(PathBuf::from(readlinkat(dir, name).map_err(|e| {
                    LabError::io("readlink", found.shown.display(), e.into())
                })?))
            }
            // Sockets, FIFOs and devices are left out, as docker build
            // leaves them out of the context.
            _ => return Ok(()),
        };
        let mode = match (&kind, chmod) {
            (Kind::Symlink(_), _) => 0o777,
            (_, Some(mode)) => mode,
            _ => stat.st_mode & 0o7777,
        };
        let size = match kind {
            Kind::File => stat.st_size.max(0) as u64,
            _ => 0,
        };
        let source = match kind {
            Kind::File => Some(found.source(at)),
            _ => None,
        };
        self.entries.insert(
            target.trim_start_matches('/').to_string(),
            Entry {
                source,
                kind,
                mode,
                uid: owner.0,
                gid: owner.1,
                mtime: stat.st_mtime.max(0) as u64,
                size,
            },
        );
        Ok(())
    }

    /// A directory's contents under `target` (Docker copies the contents,
    /// not the directory), minus what the ignore file excludes: `dir` is
    /// open, `under` its path beneath the walk's top, `relative` its path
    /// in the context, as the patterns see it. Every entry is opened from
    /// its directory's descriptor without following a symlink (one is
    /// copied as a symlink), and described by fstat of what was opened.
    fn add_dir_contents(
        &mut self,
        walk: &Walk,
        dir: &OwnedFd,
        under: &Path,
        relative: &str,
        target: &str,
    ) -> Result<bool, LabError> {
        let shown_dir = |name: &std::ffi::OsStr| Path::new(relative).join(name);
        let listing = openat(
            dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .and_then(nix::dir::Dir::from_fd)
        .map_err(|e| LabError::io("open", relative, e.into()))?;
        let mut names: Vec<std::ffi::OsString> = Vec::new();
        for entry in listing.into_iter() {
            let entry = entry.map_err(|e| LabError::io("readdir", relative, e.into()))?;
            let name = std::ffi::OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." {
                names.push(name.to_os_string());
            }
        }
        names.sort();
        let mut any = false;
        for name in names {
            let name_text = name.to_string_lossy();
            let inside = clean_path(&format!("{relative}/{name_text}"));
            let inside = inside.trim_start_matches('/');
            let to = clean_path(&format!("{target}/{name_text}"));
            let shown = shown_dir(&name);
            let fd = openat(
                dir,
                name.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| LabError::io("open", shown.display(), e.into()))?;
            let stat = fstat(&fd).map_err(|e| LabError::io("stat", shown.display(), e.into()))?;
            let found = Found {
                name: Some(under.join(&name)),
                stat,
                shown,
            };
            let excluded = walk.ignore.excluded(inside);
            if kind_of(&stat) == SFlag::S_IFDIR {
                // An excluded directory is walked only if an exception
                // (`!pattern`) may take something in it back.
                if excluded && !walk.ignore.has_exceptions {
                    continue;
                }
                let child = reopen_dir(&fd, &found.shown)?;
                let below = under.join(&name);
                let kept = self.add_dir_contents(walk, &child, &below, inside, &to)?;
                if !excluded || kept {
                    self.entries.insert(
                        to.trim_start_matches('/').to_string(),
                        Entry::dir(&Owned::from(&stat), Some(walk.owner), walk.chmod),
                    );
                    any = true;
                }
            } else if !excluded {
                let link = Some((dir, name.as_os_str()));
                self.add_in(&found, &walk.top, link, &to, walk.owner, walk.chmod)?;
                any = true;
            }
        }
        Ok(any)
    }

    /// What the cache keys a COPY by: the digest of the layer's tar with
    /// every mtime 0 (touching a file is no change; its content, name,
    /// mode or owner is).
    fn digest(&self) -> Result<Digest, LabError> {
        let mut builder = tar::Builder::new(HashingWriter::new(std::io::sink()));
        write_entries(&mut builder, &self.entries, false)
            .map_err(|e| image_error(e.to_string(), "a source could not be read"))?;
        let hashing = builder
            .into_inner()
            .map_err(|e| image_error(e.to_string(), "a source could not be read"))?;
        Ok(hashing.finish().1)
    }
}

/// The entries as a tar, files read as they are written: each through
/// its planned source, refused if it is not the file planned or changed
/// while it was read.
fn write_entries<W: Write>(
    builder: &mut tar::Builder<W>,
    entries: &BTreeMap<String, Entry>,
    with_mtime: bool,
) -> std::io::Result<()> {
    for (path, entry) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_uid(entry.uid.into());
        header.set_gid(entry.gid.into());
        header.set_mtime(if with_mtime { entry.mtime } else { 0 });
        header.set_size(0);
        match &entry.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                builder.append_data(&mut header, path, std::io::empty())?;
            }
            Kind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                builder.append_link(&mut header, path, target)?;
            }
            Kind::File => {
                let source = entry.source.as_ref().expect("a file has a source");
                let file = source.open()?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(entry.size);
                let content = ExactSize {
                    inner: (&file).take(entry.size),
                    left: entry.size,
                    path: &source.shown,
                };
                builder.append_data(&mut header, path, content)?;
                source.unchanged(&file)?;
            }
        }
    }
    builder.finish()
}

// ANCHOR: view
/// The current image's files, as overlayfs would show them, read from its
/// layer directories (top first) without following a symlink out of them.
struct View {
    layers: Vec<PathBuf>,
}

impl View {
    /// The entry at an absolute path, symlinks in its directories
    /// followed inside the image, the last component not.
    fn lstat(&self, path: &str) -> Option<std::fs::Metadata> {
        let resolved = self.resolve(path);
        self.lookup(&split(&resolved)).map(|(_, meta)| meta)
    }

    fn is_dir(&self, path: &str) -> bool {
        let resolved = self.resolve(path);
        match self.lookup(&split(&resolved)) {
            Some((host, meta)) if meta.is_symlink() => {
                // A symlink to a directory is one, for COPY's dest.
                let target = std::fs::read_link(host).unwrap_or_default();
                let parent = Path::new(&resolved).parent().unwrap_or(Path::new("/"));
                let target = clean_path(&parent.join(target).to_string_lossy());
                self.lookup(&split(&self.resolve(&target)))
                    .is_some_and(|(_, m)| m.is_dir())
            }
            Some((_, meta)) => meta.is_dir(),
            None => false,
        }
    }

    /// The path with every symlink in its directories replaced by where
    /// it points (inside the image), the last component left as it is.
    fn resolve(&self, path: &str) -> String {
        let mut parts = split(path);
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while parts.len() > 1 {
            let next = parts.remove(0);
            done.push(next);
            if let Some((host, meta)) = self.lookup(&done)
                && meta.is_symlink()
                && hops < 40
            {
                hops += 1;
                let target = std::fs::read_link(host).unwrap_or_default();
                done.pop();
                let base = match target.is_absolute() {
                    true => String::new(),
                    false => format!("/{}", done.join("/")),
                };
                let mut again = split(&clean_path(&format!("{base}/{}", target.display())));
                again.extend(parts);
                parts = again;
                done.clear();
            }
        }
        done.extend(parts);
        format!("/{}", done.join("/"))
    }

    /// The topmost layer's entry for `parts`: a layer whose directories on
    /// the way are not all directories hides it (a file, a whiteout, a
    /// symlink resolved by `resolve`).
    fn lookup(&self, parts: &[String]) -> Option<(PathBuf, std::fs::Metadata)> {
        'layers: for layer in &self.layers {
            let mut path = layer.clone();
            for (depth, part) in parts.iter().enumerate() {
                path.push(part);
                let meta = match std::fs::symlink_metadata(&path) {
                    Ok(meta) => meta,
                    Err(_) => continue 'layers,
                };
                // overlayfs' whiteout: deleted in this layer.
                if meta.file_type().is_char_device() && meta.rdev() == 0 {
                    return None;
                }
                if depth + 1 == parts.len() {
                    return Some((path, meta));
                }
                if !meta.is_dir() {
                    return None;
                }
            }
            if parts.is_empty() {
                return std::fs::symlink_metadata(layer)
                    .ok()
                    .map(|m| (layer.clone(), m));
            }
        }
        None
    }

    /// `--chown=USER[:GROUP]`: numbers, or names from the image's own
    /// /etc/passwd and /etc/group (never the host's).
    fn owner(&self, spec: &str) -> Result<(u32, u32), LabError> {
        let (user, group) = match spec.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (spec, None),
        };
        let uid_and_group = match user.parse::<u32>() {
            Ok(uid) => (uid, None),
            Err(_) => {
                let entry = self.find_in("/etc/passwd", user).ok_or_else(|| {
                    image_error(
                        format!("--chown={spec}: no user {user} in the image's /etc/passwd"),
                        "give numeric ids, or add the user first (RUN adduser ...)",
                    )
                })?;
                (
                    entry.get(2).and_then(|u| u.parse().ok()).unwrap_or(0),
                    entry.get(3).and_then(|g| g.parse().ok()),
                )
            }
        };
        let gid = match group {
            None => uid_and_group.1.unwrap_or(uid_and_group.0),
            Some(group) => match group.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => self
                    .find_in("/etc/group", group)
                    .and_then(|entry| entry.get(2).and_then(|g| g.parse().ok()))
                    .ok_or_else(|| {
                        image_error(
                            format!("--chown={spec}: no group {group} in the image's /etc/group"),
                            "give numeric ids, or add the group first",
                        )
                    })?,
            },
        };
        Ok((uid_and_group.0, gid))
    }

    /// The fields of NAME's line in a passwd-like file of the image.
    fn find_in(&self, file: &str, name: &str) -> Option<Vec<String>> {
        let (host, meta) = self.lookup(&split(&self.resolve(file)))?;
        if !meta.is_file() || meta.len() > 4 << 20 {
            return None;
        }
        let text = std::fs::read_to_string(host).ok()?;
        text.lines()
            .map(|line| line.split(':').map(String::from).collect::<Vec<_>>())
            .find(|fields| fields.first().map(String::as_str) == Some(name))
    }
}
// ANCHOR_END: view

fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(String::from)
        .collect()
}

// ANCHOR: ignore
/// `.containerignore` (or `.dockerignore`): patterns of paths in the
/// context that COPY leaves out, as Docker matches them: `*` and `?`
/// within one path component, `**` across any number of them, `[a-z]`,
/// a pattern also matching everything under a directory it matches, and
/// `!pattern` taking back what an earlier pattern excluded (the last
/// pattern that matches decides). Hand-written: thirty lines do what a
/// crate would, and its rules are the ones to read.
struct Ignore {
    file: String,
    /// (exception, pattern components)
    patterns: Vec<(bool, Vec<String>)>,
    has_exceptions: bool,
}

impl Ignore {
    /// The ignore file, found inside the context (a symlink there
    /// followed only within it).
    fn read(root: &OwnedFd) -> Result<Ignore, LabError> {
        for file in [".containerignore", ".dockerignore"] {
            let text = read_in_root(root, file).map_err(|e| LabError::io("read", file, e))?;
            if let Some(text) = text {
                return Ok(Ignore::parse(file, &text));
            }
        }
        Ok(Ignore::parse("", ""))
    }

    fn parse(file: &str, text: &str) -> Ignore {
        let patterns: Vec<(bool, Vec<String>)> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| match line.strip_prefix('!') {
                Some(rest) => (true, split(&clean_path(rest.trim()))),
                None => (false, split(&clean_path(line))),
            })
            .filter(|(_, parts)| !parts.is_empty())
            .collect();
        Ignore {
            file: file.into(),
            has_exceptions: patterns.iter().any(|(exception, _)| *exception),
            patterns,
        }
    }

    /// `relative` (a path in the context, no leading /) is left out.
    fn excluded(&self, relative: &str) -> bool {
        let parts = split(relative);
        let mut excluded = false;
        for (exception, pattern) in &self.patterns {
            let matched = (1..=parts.len()).any(|n| glob(pattern, &parts[..n]));
            if matched {
                excluded = !exception;
            }
        }
        excluded
    }
}

/// Pattern components against path components; `**` takes any number.
fn glob(pattern: &[String], path: &[String]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            glob(rest, path) || (!path.is_empty() && glob(pattern, &path[1..]))
        }
        Some((first, rest)) => {
            !path.is_empty()
                && wildcard(first.as_bytes(), path[0].as_bytes())
                && glob(rest, &path[1..])
        }
    }
}

/// One component: `*` any run of bytes, `?` one, `[...]` a class (`!` or
/// `^` negates, `a-z` ranges), `\` escapes.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| wildcard(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && wildcard(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some(end) = rest.iter().skip(1).position(|b| *b == b']').map(|p| p + 1) else {
                return name.first() == Some(&b'[') && wildcard(rest, &name[1..]);
            };
            let Some(&c) = name.first() else { return false };
            let mut class = &rest[..end];
            let negated = matches!(class.first(), Some(b'!' | b'^'));
            if negated {
                class = &class[1..];
            }
            let mut found = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    found |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    found |= class[i] == c;
                    i += 1;
                }
            }
            found != negated && wildcard(&rest[end + 1..], &name[1..])
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            name.first() == Some(&rest[0]) && wildcard(&rest[1..], &name[1..])
        }
        Some((c, rest)) => name.first() == Some(c) && wildcard(rest, &name[1..]),
    }
}
// ANCHOR_END: ignore

// ANCHOR: cache
/// The build cache: key -> image id, in `STORE/build-cache.json`.
struct Cache {
    path: PathBuf,
    entries: BTreeMap<String, Digest>,
}

impl Cache {
    fn read(store: &ImageStore) -> Cache {
        let path = store.root.join("build-cache.json");
        // A damaged index is an empty one: the cache only saves time.
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Cache { path, entries }
    }

    /// The image of `key`, if it is still in the store.
    fn get(&self, store: &ImageStore, key: &str) -> Option<ImageRecord> {
        store.image(self.entries.get(key)?)
    }

    /// Remember `key` -> `id`: read again under the lock (another build
    /// may have written since), entries of removed images dropped.
    fn put(&mut self, store: &ImageStore, key: &str, id: &Digest) -> Result<(), LabError> {
        let _lock = store.lock()?;
        let mut fresh = Cache::read(store).entries;
        fresh.insert(key.to_string(), id.clone());
        fresh.retain(|_, id| store.image(id).is_some());
        let staging = store
            .root
            .join("tmp")
            .join(format!("build-cache-{}.json", std::process::id()));
        let bytes = serde_json::to_vec_pretty(&fresh).expect("the cache serialises");
        std::fs::write(&staging, bytes).map_err(|e| LabError::io("write", staging.display(), e))?;
        std::fs::rename(&staging, &self.path)
            .map_err(|e| LabError::io("rename", self.path.display(), e))?;
        self.entries = fresh;
        Ok(())
    }
}
// ANCHOR_END: cache

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_patterns_match_as_dockers() {
        let ignore = Ignore::parse(
            ".dockerignore",
            "# comment\n*.log\n/build\nsecrets/**\n!secrets/public.txt\n**/tmp?\n",
        );
        assert!(ignore.excluded("app.log"));
        assert!(!ignore.excluded("src/app.log"), "* stays in one component");
        assert!(ignore.excluded("build"));
        assert!(
            ignore.excluded("build/out/x"),
            "a directory's contents go with it"
        );
        assert!(ignore.excluded("secrets/key"));
        assert!(!ignore.excluded("secrets/public.txt"), "! takes it back");
        assert!(ignore.excluded("a/b/tmp1"));
        assert!(ignore.excluded("tmp1"));
        assert!(!ignore.excluded("a/tmp"));
        assert!(!ignore.excluded("README"));
        assert!(ignore.has_exceptions);
    }

    #[test]
    fn wildcards_cover_classes_and_escapes() {
        assert!(wildcard(b"file[0-9].txt", b"file7.txt"));
        assert!(!wildcard(b"file[!0-9].txt", b"file7.txt"));
        assert!(wildcard(b"a\\*", b"a*"));
        assert!(!wildcard(b"a\\*", b"ab"));
        assert!(wildcard(b"*.tar.*", b"x.tar.gz"));
    }

    #[test]
    fn the_view_finds_files_through_an_images_symlinks_and_whiteouts() {
        let dir = std::env::temp_dir().join(format!("container-lab-view-{}", std::process::id()));
        let (top, bottom) = (dir.join("top"), dir.join("bottom"));
        std::fs::create_dir_all(bottom.join("usr/bin")).unwrap();
        std::fs::create_dir_all(bottom.join("etc")).unwrap();
        std::fs::write(
            bottom.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(bottom.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        std::os::unix::fs::symlink("usr/bin", bottom.join("bin")).unwrap();
        std::fs::create_dir_all(top.join("usr")).unwrap();
        let view = View {
            layers: vec![top.clone(), bottom.clone()],
        };
        assert_eq!(view.resolve("/bin/x"), "/usr/bin/x");
        assert!(view.is_dir("/bin"));
        assert!(view.is_dir("/usr/bin"));
        assert!(!view.is_dir("/etc/passwd"));
        assert_eq!(view.owner("app").unwrap(), (1000, 1001));
        assert_eq!(view.owner("app:staff").unwrap(), (1000, 50));
        assert_eq!(view.owner("7:8").unwrap(), (7, 8));
        assert!(view.owner("nobody").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
