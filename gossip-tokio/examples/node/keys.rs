//! The node program's keys: reading the key file, choosing the encryption mode, and making a
//! running node's keyring match the file again (on SIGHUP).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::ValueEnum;
use gossip_tokio::{EncryptionMode, Handle, KeyFingerprint, Keyring, KeyringError, KeyringStatus, SecretKey};

/// What `--encryption` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Send plain datagrams, drop sealed ones.
    Off,
    /// Send plain datagrams, open sealed ones too (first step of turning encryption on).
    Accept,
    /// Seal every datagram, still accept plain ones (second step).
    Send,
    /// Seal every datagram, drop plain ones.
    Require,
}

impl From<Mode> for EncryptionMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Off => Self::Off,
            Mode::Accept => Self::Accept,
            Mode::Send => Self::Send,
            Mode::Require => Self::Require,
        }
    }
}

/// The encryption mode to start in: `--encryption` if given, else `require` with a key file
/// and `off` without. A mode other than `off` without a key file is an error.
pub fn encryption(mode: Option<Mode>, has_key_file: bool) -> Result<EncryptionMode, String> {
    match (mode, has_key_file) {
        (None, true) => Ok(EncryptionMode::Require),
        (None, false) | (Some(Mode::Off), _) => Ok(EncryptionMode::Off),
        (Some(mode), true) => Ok(mode.into()),
        (Some(mode), false) => Err(format!(
            "--encryption {} needs keys: pass --key-file PATH, a file with the base64 of a 32-byte \
             key on each line (create one with `openssl rand -base64 32 > PATH`), or leave \
             encryption off",
            mode.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
        )),
    }
}

/// Why a key file cannot be used. Every message says what to do about it.
#[derive(Debug)]
pub enum KeyFileError {
    /// The file is missing or unreadable.
    Read { path: PathBuf, source: io::Error },
    /// The file holds no key.
    Empty { path: PathBuf },
    /// A line is not base64.
    NotBase64 { path: PathBuf, line: usize, source: base64::DecodeError },
    /// A line does not decode to 32 bytes.
    Length { path: PathBuf, line: usize, len: usize },
    /// A line's key cannot join the keys above it (same key id, too many keys).
    Keyring { path: PathBuf, line: usize, source: KeyringError },
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => write!(
                f,
                "cannot read key file {}: {source}; check --key-file, or create the file with one \
                 key per line: `openssl rand -base64 32 > {}`",
                path.display(),
                path.display()
            ),
            Self::Empty { path } => write!(
                f,
                "key file {} holds no key (only blank lines and # comments); add a line with the \
                 base64 of 32 random bytes, as printed by `openssl rand -base64 32`",
                path.display()
            ),
            Self::NotBase64 { path, line, source } => write!(
                f,
                "key file {}, line {line}: not base64 ({source}); each key line must be the base64 \
                 of 32 bytes, as printed by `openssl rand -base64 32`",
                path.display()
            ),
            Self::Length { path, line, len } => write!(
                f,
                "key file {}, line {line}: decodes to {len} bytes, but a key is 32 bytes; replace \
                 it with the output of `openssl rand -base64 32`",
                path.display()
            ),
            Self::Keyring { path, line, source } => {
                write!(f, "key file {}, line {line}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for KeyFileError {}

/// Reads the key file at `path` (see [`parse`]).
pub fn read(path: &Path) -> Result<Vec<SecretKey>, KeyFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| KeyFileError::Read { path: path.to_owned(), source })?;
    parse(path, &text)
}

/// The keys of a key file's `text`, the first line's primary: one key per line as the base64
/// of 32 bytes; blank lines and lines starting with `#` are skipped, and a key repeated on a
/// later line counts once. The keys are checked to fit in one keyring together. `path` is
/// only named in errors.
pub fn parse(path: &Path, text: &str) -> Result<Vec<SecretKey>, KeyFileError> {
    let mut keys: Vec<SecretKey> = Vec::new();
    let mut ring: Option<Keyring> = None;
    for (index, line) in text.lines().enumerate() {
        let (line, number) = (line.trim(), index + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bytes = STANDARD.decode(line).map_err(|source| KeyFileError::NotBase64 {
            path: path.to_owned(),
            line: number,
            source,
        })?;
        let key = SecretKey::from_bytes(&bytes).map_err(|_| KeyFileError::Length {
            path: path.to_owned(),
            line: number,
            len: bytes.len(),
        })?;
        if keys.contains(&key) {
            continue;
        }
        ring = Some(match ring {
            None => Keyring::new(key.clone()),
            Some(ring) => ring.with(&key).map_err(|source| KeyFileError::Keyring {
                path: path.to_owned(),
                line: number,
                source,
            })?,
        });
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(KeyFileError::Empty { path: path.to_owned() });
    }
    Ok(keys)
}

/// One command that brings a keyring closer to a key file's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Install this key.
    Install(SecretKey),
    /// Make this key the primary.
    Use(KeyFingerprint),
    /// Remove this key.
    Remove(KeyFingerprint),
}

/// The commands that turn a ring holding `current` (primary first) into one holding exactly
/// `file` with `file[0]` primary: first remove the keys the file dropped (but the primary),
/// so that a new key cannot collide with one on its way out; then install the new keys; make
/// the first line primary; and remove the old primary if the file dropped it.
pub fn plan(current: &[KeyFingerprint], file: &[SecretKey]) -> Vec<Step> {
    let wanted: Vec<KeyFingerprint> = file.iter().map(SecretKey::fingerprint).collect();
    let primary = current.first().copied();
    let mut steps = Vec::new();
    for &fingerprint in current.iter().skip(1) {
        if !wanted.contains(&fingerprint) {
            steps.push(Step::Remove(fingerprint));
        }
    }
    for key in file {
        if !current.contains(&key.fingerprint()) {
            steps.push(Step::Install(key.clone()));
        }
    }
    if let Some(&first) = wanted.first() {
        if primary != Some(first) {
            steps.push(Step::Use(first));
        }
    }
    if let Some(primary) = primary {
        if !wanted.contains(&primary) {
            steps.push(Step::Remove(primary));
        }
    }
    steps
}

/// Re-reads the key file at `path` and makes `node`'s ring match it. Returns the line to
/// print: the resulting keys and the cluster's view of them. On an unusable file nothing
/// changes; a refused step stops the others.
pub async fn reload(node: &Handle, path: &Path) -> Result<String, String> {
    let file = read(path).map_err(|error| format!("{error}; the keyring is unchanged"))?;
    let current = node.keys().await.map_err(|error| error.to_string())?;
    for step in plan(&current, &file) {
        let done = match &step {
            Step::Install(key) => node.install_key(key).await.map(drop),
            Step::Use(fingerprint) => node.use_key(*fingerprint).await,
            Step::Remove(fingerprint) => node.remove_key(*fingerprint).await,
        };
        done.map_err(|error| format!("key rotation stopped at {step:?}: {error}"))?;
    }
    let keys = node.keys().await.map_err(|error| error.to_string())?;
    let status = node.keyring_status().await.map_err(|error| error.to_string())?;
    Ok(status_line(&keys, &status))
}

/// One line: this node's keys (primary first) and, for every key held here or by a live
/// member, how many of the live members hold it and seal with it.
pub fn status_line(keys: &[KeyFingerprint], status: &KeyringStatus) -> String {
    let here: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(index, key)| if index == 0 { format!("{key} (primary)") } else { key.to_string() })
        .collect();
    let live = status.live_members;
    let cluster: Vec<String> = status
        .keys
        .iter()
        .map(|key| {
            let elsewhere = if key.installed_here { "" } else { ", not held here" };
            format!(
                "{} held by {}/{live}, primary for {}/{live}{elsewhere}",
                key.fingerprint, key.holders, key.primary_for
            )
        })
        .collect();
    let mut line = format!("keyring: {}; cluster: {}", here.join(" "), cluster.join("; "));
    if status.unknown > 0 {
        line.push_str(&format!("; {}/{live} members publish no keyring yet", status.unknown));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The base64 line of a key of 32 bytes of `byte`.
    fn line(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 32]).expect("32 bytes")
    }

    fn path() -> &'static Path {
        Path::new("/etc/gossip/keys")
    }

    #[test]
    fn a_file_of_openssl_lines_with_comments_and_blanks_is_read_in_order() {
        let text = format!("# the cluster's keys\n\n  {}  \r\n# next\n{}\n{}\n", line(1), line(3), line(1));
        let keys = parse(path(), &text).expect("a good file");
        assert_eq!(keys, vec![key(1), key(3)], "in order, primary first, the repeated key once");
        // What `openssl rand -base64 32` prints: 44 characters with padding.
        assert_eq!(line(1).len(), 44);
    }

    #[test]
    fn a_line_that_is_not_base64_is_named() {
        let text = format!("# keys\n{}\nnot-base64!!\n", line(1));
        let error = parse(path(), &text).expect_err("refused");
        assert!(matches!(error, KeyFileError::NotBase64 { line: 3, .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("/etc/gossip/keys, line 3: not base64"), "{message}");
        assert!(message.contains("openssl rand -base64 32"), "says what to do: {message}");
    }

    #[test]
    fn a_line_of_the_wrong_length_is_named() {
        let text = format!("{}\n{}\n", line(1), STANDARD.encode([7u8; 16]));
        let error = parse(path(), &text).expect_err("refused");
        assert!(matches!(error, KeyFileError::Length { line: 2, len: 16, .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("line 2: decodes to 16 bytes, but a key is 32"), "{message}");
        assert!(message.contains("openssl rand -base64 32"), "{message}");
    }

    #[test]
    fn a_file_without_keys_is_refused() {
        for text in ["", "\n\n", "# only a comment\n   \n"] {
            let error = parse(path(), text).expect_err("refused");
            assert!(matches!(error, KeyFileError::Empty { .. }), "{error:?}");
            assert!(error.to_string().contains("holds no key"), "{error}");
        }
    }

    #[test]
    fn keys_that_cannot_share_a_ring_are_refused_with_their_line() {
        let first = key(0).fingerprint();
        let collider_bytes = (1..10_000u32)
            .map(|i| {
                let mut bytes = [0xee; 32];
                bytes[..4].copy_from_slice(&i.to_le_bytes());
                bytes
            })
            .find(|bytes| {
                SecretKey::from_bytes(bytes).expect("32 bytes").fingerprint().key_id() == first.key_id()
            })
            .expect("one key in 256 shares the key id");
        let text = format!("{}\n# rotation\n{}\n", line(0), STANDARD.encode(collider_bytes));
        let error = parse(path(), &text).expect_err("refused");
        assert!(
            matches!(
                error,
                KeyFileError::Keyring { line: 3, source: KeyringError::KeyIdCollision { .. }, .. }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("generate another key"), "{error}");
    }

    #[test]
    fn a_missing_file_is_refused_with_what_to_do() {
        let missing = std::env::temp_dir().join(format!("gossip-no-such-key-file-{}", std::process::id()));
        let error = read(&missing).expect_err("refused");
        assert!(matches!(error, KeyFileError::Read { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("cannot read key file"), "{message}");
        assert!(message.contains("openssl rand -base64 32 >"), "{message}");
    }

    #[test]
    fn the_mode_defaults_to_require_with_keys_and_off_without() {
        assert_eq!(encryption(None, true), Ok(EncryptionMode::Require));
        assert_eq!(encryption(None, false), Ok(EncryptionMode::Off));
        assert_eq!(encryption(Some(Mode::Accept), true), Ok(EncryptionMode::Accept));
        assert_eq!(encryption(Some(Mode::Off), false), Ok(EncryptionMode::Off));
        for mode in [Mode::Accept, Mode::Send, Mode::Require] {
            let message = encryption(Some(mode), false).expect_err("needs a key file");
            assert!(message.contains("needs keys: pass --key-file PATH"), "{message}");
        }
        assert!(encryption(Some(Mode::Send), false).unwrap_err().starts_with("--encryption send "));
    }

    #[test]
    fn the_plan_installs_then_uses_then_removes() {
        let (a, b, c) = (key(1), key(3), key(5));
        let (fa, fb, fc) = (a.fingerprint(), b.fingerprint(), c.fingerprint());
        assert_eq!(plan(&[fa], std::slice::from_ref(&a)), vec![], "already in place");
        assert_eq!(plan(&[fa], &[a.clone(), b.clone()]), vec![Step::Install(b.clone())]);
        assert_eq!(plan(&[fa, fb], &[b.clone(), a.clone()]), vec![Step::Use(fb)]);
        assert_eq!(plan(&[fb, fa], std::slice::from_ref(&b)), vec![Step::Remove(fa)]);
        assert_eq!(
            plan(&[fa, fb], std::slice::from_ref(&c)),
            vec![Step::Remove(fb), Step::Install(c.clone()), Step::Use(fc), Step::Remove(fa)],
            "a whole new ring: the dropped keys go first, the old primary last"
        );
    }

    /// Writes `text` as a key file of its own.
    fn key_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("gossip-node-keys-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("a temporary file");
        path
    }

    #[tokio::test]
    async fn a_reload_makes_a_running_ring_match_the_file_step_by_step() {
        let (a, b) = (key(1), key(3));
        let (fa, fb) = (a.fingerprint(), b.fingerprint());
        let mut config = gossip_tokio::Config::local();
        config.encryption = EncryptionMode::Require;
        let options = gossip_tokio::Options::default().with_keys(parse(path(), &line(1)).expect("one key"));
        let (node, _events) =
            gossip_tokio::start_with(config, "reloader", "127.0.0.1:0".parse().expect("an address"), options)
                .await
                .expect("starts");
        assert_eq!(node.keys().await.expect("runs"), vec![fa]);

        // The rotation of the module docs: add, promote, drop.
        let file = key_file("rotation", &format!("{}\n{}\n", line(1), line(3)));
        let shown = reload(&node, &file).await.expect("installed");
        assert_eq!(node.keys().await.expect("runs"), vec![fa, fb]);
        assert!(shown.starts_with(&format!("keyring: {fa} (primary) {fb}; cluster: ")), "{shown}");
        assert!(shown.contains(&format!("{fa} held by 1/1, primary for 1/1")), "{shown}");

        std::fs::write(&file, format!("{}\n{}\n", line(3), line(1))).expect("rewritten");
        reload(&node, &file).await.expect("promoted");
        assert_eq!(node.keys().await.expect("runs"), vec![fb, fa]);

        std::fs::write(&file, format!("# rotated\n{}\n", line(3))).expect("rewritten");
        let shown = reload(&node, &file).await.expect("dropped");
        assert_eq!(node.keys().await.expect("runs"), vec![fb]);
        assert!(shown.contains(&format!("{fb} held by 1/1, primary for 1/1")), "{shown}");
        assert!(!shown.contains(&fa.to_string()), "{shown}");

        // A bad file changes nothing.
        std::fs::write(&file, format!("{}\nshort\n", line(1))).expect("rewritten");
        let error = reload(&node, &file).await.expect_err("refused");
        assert!(error.contains("line 2") && error.contains("the keyring is unchanged"), "{error}");
        assert_eq!(node.keys().await.expect("runs"), vec![fb]);
        assert_eq!(node.encryption().await.expect("runs"), EncryptionMode::Require);

        let _ = std::fs::remove_file(&file);
        node.shutdown().await;
    }
}
