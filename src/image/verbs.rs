//! The image verbs of ch08, as Docker names them: pull, load, import,
//! save, push, images, rmi, image inspect, history, image prune, diff. The
//! chapter file only dispatches to them.

use super::digest::Digest;
use super::store::{ImageRecord, ImageStore};
use crate::error::LabError;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct PullArgs {
    /// The image: NAME[:TAG], NAME@sha256:DIGEST, or HOST[:PORT]/PATH[:TAG]
    /// (Docker Hub and library/ when no host is named)
    #[arg(value_name = "IMAGE")]
    pub reference: String,
    /// Check the registry's TLS certificate and refuse plain HTTP (only
    /// loopback registries get plain HTTP by default)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// No progress bars, only the image's id at the end
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show each HTTP request on stderr: the method, the URL, what it
    /// accepts, why it is made, and the registry's answer
    #[arg(long)]
    pub explain: bool,
}

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// The archive: docker-archive (`docker save`), oci-archive, or an OCI
    /// image layout directory
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: PathBuf,
    /// Only the loaded images' names at the end
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// A root filesystem: a tar file (compressed or not) or a directory
    #[arg(value_name = "FILE|DIR")]
    pub source: PathBuf,
    /// The new image's name
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
    /// Its history comment
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    pub message: Option<String>,
    /// Its command (Cmd), as a shell word list: -c '/bin/sh -c date'
    #[arg(long = "cmd", value_name = "COMMAND")]
    pub cmd: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct CommitArgs {
    /// The container: its id, a unique prefix of it, or its name
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The new image's name (without one, the image is known by its id)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
    /// The history entry's comment
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    pub message: Option<String>,
    /// The image's author
    #[arg(short = 'a', long, value_name = "AUTHOR")]
    pub author: Option<String>,
    /// A Containerfile instruction to change the config with: CMD,
    /// ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE (repeatable), as in
    /// -c 'CMD ["/bin/sh"]' -c 'ENV MODE=test'
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Freeze a running container while its layer is read (the default),
    /// so that the layer is one moment of it
    #[arg(short = 'p', long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
    /// Only the new image's id
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// The two archive formats `save` writes (and `load` reads).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq)]
pub enum SaveFormat {
    /// Docker's format: manifest.json, HEX.json configs, each layer an
    /// uncompressed HEX.tar whose sha256 is its diffID
    DockerArchive,
    /// A tar of an OCI image layout: oci-layout, index.json naming each
    /// image's manifest (its tag in org.opencontainers.image.ref.name),
    /// every blob under blobs/sha256/, layers compressed as stored
    OciArchive,
}

#[derive(Args, Debug, Clone)]
pub struct SaveArgs {
    /// The archive to write; written under a temporary name beside it and
    /// renamed when complete, so a failure leaves nothing there
    #[arg(short = 'o', long = "output", value_name = "FILE", required = true)]
    pub output: PathBuf,
    /// docker-archive: what `docker save` writes, read by every tool,
    /// layers uncompressed; oci-archive: the OCI image layout, layers as
    /// the store keeps them (gzip stays gzip), manifests kept as they came.
    /// podman loads one image of an oci-archive: save several as a
    /// docker-archive
    #[arg(long, value_enum, default_value_t = SaveFormat::DockerArchive)]
    pub format: SaveFormat,
    /// The images: NAME[:TAG] (saved with that tag) or an id (untagged)
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug, Clone)]
#[command(
    after_help = "What push sends, in order (OCI distribution spec, \"Push\"):\n  \
    1. for each layer, then the config: HEAD /v2/NAME/blobs/DIGEST; 200: the registry has it, \
    nothing is sent (\"Layer already exists\"); 404: POST /v2/NAME/blobs/uploads/ opens an \
    upload, and the bytes go in one PUT ?digest=DIGEST, or, above 8 MiB, in PATCHes of \
    8 MiB with Content-Range closed by a PUT ?digest=\n  \
    2. PUT /v2/NAME/manifests/TAG, last: the registry refuses a manifest naming a blob \
    it lacks, so a puller never finds a tag whose layers are missing.\n\
    Layers go as the store keeps them (compressed if they came so, imported ones as plain \
    tars): nothing is compressed again, and a pulled image keeps its digest."
)]
pub struct PushArgs {
    /// Check the registry's TLS certificate and refuse plain HTTP (only
    /// loopback registries get plain HTTP by default)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Show each HTTP request on stderr: the method, the URL, the headers
    /// that matter, why it is made, and the registry's answer
    #[arg(long)]
    pub explain: bool,
    /// No progress, only the manifest's digest at the end
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The image in the store: NAME[:TAG] or an id
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Where to: HOST[:PORT]/PATH[:TAG] (docker:// allowed); the image's
    /// own name when left out
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,
}

#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Each step that makes an image is cached: its key is the image it starts \
    from, the instruction with its variables replaced, and what the step reads (the copied files' \
    names, modes, owners and content for COPY and ADD; the build args for RUN). An unchanged \
    rebuild runs nothing. The first step whose key changed is built again, and so is every step \
    after it, because its parent image changed: put what changes least first (install packages, \
    then COPY the sources you edit).\n\n\
    Known: FROM (one stage), ARG, RUN, COPY, ADD (local files; no URLs, archives not unpacked), \
    ENV, WORKDIR, USER, CMD, ENTRYPOINT, LABEL, EXPOSE. .containerignore or .dockerignore in \
    CONTEXT lists paths COPY leaves out.\n\n\
    Intermediate images are untagged: `image prune` removes them, and with them the cache.\n\n\
    Example:\n  sudo ch08-images build -t lab/app:v1 ."
)]
pub struct BuildArgs {
    /// The new image's name
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tag: Option<String>,
    /// The Containerfile (default: CONTEXT/Containerfile, else CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A value for an ARG of the Containerfile (repeatable); RUN sees it
    /// in its environment, and it is part of RUN's cache key
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Build every step again, whatever the cache holds
    #[arg(long)]
    pub no_cache: bool,
    /// The network of RUN's containers: none (the default: a build that
    /// downloads is not repeatable), host, or bridge
    #[arg(
        long = "network",
        alias = "net",
        value_name = "MODE",
        default_value = "none"
    )]
    pub network: String,
    /// Only the new image's id
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The build context: the directory COPY and ADD read
    #[arg(value_name = "CONTEXT")]
    pub context: PathBuf,
}

/// `image SUBCOMMAND`: Docker's long forms.
#[derive(Subcommand, Debug, Clone)]
pub enum ImageSubcommand {
    /// Show images' records and configs as JSON
    Inspect {
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<String>,
    },
    /// Remove images no tag names (with -a, every image no container uses),
    /// then every layer and blob no image names
    Prune {
        /// Every image no container uses, tagged or not
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// List images (as `images`)
    Ls(ListArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Only the ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Full ids, not the first 12 digits
    #[arg(long)]
    pub no_trunc: bool,
}

/// The verbs that act on images.
#[derive(Subcommand, Debug, Clone)]
pub enum ImageVerb {
    /// Download an image from a registry (the OCI distribution API)
    Pull(PullArgs),
    /// Add the images of an archive made by docker save, podman save or skopeo
    Load(LoadArgs),
    /// Make a one-layer image of a root filesystem (a tar file or a directory)
    Import(ImportArgs),
    /// Write images to an archive file (docker-archive or oci-archive)
    /// that `load`, `podman load` and `docker load` read
    Save(SaveArgs),
    /// Upload an image to a registry: its blobs the registry lacks, then
    /// its manifest
    Push(PushArgs),
    /// List images
    Images(ListArgs),
    /// Remove images, then every layer no other image uses (refused while
    /// a container, running or not, uses the image)
    Rmi {
        /// Remove an image named by its id even when several tags name it
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<String>,
    },
    /// Image verbs in Docker's long form: image inspect, image prune, image ls
    #[command(subcommand)]
    Image(ImageSubcommand),
    /// Show the history of an image: one line per step that made it
    History {
        /// Full ids and whole commands, not cut to fit
        #[arg(long)]
        no_trunc: bool,
        /// The image: NAME[:TAG], an id, or a unique prefix of one
        #[arg(value_name = "IMAGE")]
        image: String,
    },
    /// Make an image of a container: its writable layer becomes one new
    /// layer on top of its image's (deletions as whiteouts), and the new
    /// image shares every layer of the old
    Commit(CommitArgs),
    /// Build an image from a Containerfile (Dockerfile): one layer per RUN,
    /// COPY and ADD, every step cached
    Build(BuildArgs),
    /// Show what a container changed: A added, C changed, D deleted (read
    /// from its writable layer alone)
    Diff {
        /// The container: its id, a unique prefix of it, or its name
        #[arg(value_name = "CONTAINER")]
        container: String,
    },
}

impl ImageVerb {
    pub fn run(&self) -> Result<i32, LabError> {
        let store = ImageStore::open()?;
        match self {
            ImageVerb::Pull(args) => super::registry::pull(&store, args),
            ImageVerb::Load(args) => super::archive::load(&store, args),
            ImageVerb::Import(args) => super::archive::import(&store, args),
            ImageVerb::Save(args) => super::save::save(&store, args),
            ImageVerb::Push(args) => super::push::push(&store, args),
            ImageVerb::Images(args) | ImageVerb::Image(ImageSubcommand::Ls(args)) => {
                super::manage::images(&store, args)
            }
            ImageVerb::Rmi { force, images } => super::manage::rmi(&store, images, *force),
            ImageVerb::Image(ImageSubcommand::Inspect { images }) => {
                super::manage::inspect(&store, images)
            }
            ImageVerb::Image(ImageSubcommand::Prune { all }) => super::manage::prune(&store, *all),
            ImageVerb::History { no_trunc, image } => {
                super::manage::history(&store, image, *no_trunc)
            }
            ImageVerb::Diff { container } => super::manage::diff(&store, container),
            ImageVerb::Commit(args) => super::commit::commit_verb(&store, args),
            ImageVerb::Build(args) => super::build::build(&store, args),
        }
    }
}

/// The record to add for an image whose config and layers are in the
/// store: what pull, load and import all end with.
pub fn record_for(
    store: &ImageStore,
    config: &Digest,
    manifest: Option<Digest>,
    layer_blobs: Vec<super::spec::Descriptor>,
    repo_digests: Vec<String>,
) -> Result<ImageRecord, LabError> {
    let parsed = store.read_config(config)?;
    let size = parsed
        .rootfs
        .diff_ids
        .iter()
        .map(|layer| super::manage::du(&store.layer_dir(layer)))
        .sum();
    Ok(ImageRecord {
        id: config.clone(),
        layers: parsed.rootfs.diff_ids,
        manifest,
        layer_blobs,
        repo_digests,
        size,
        added: crate::runtime::state::now(),
    })
}
