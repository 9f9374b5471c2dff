//! Installing the clients.

use super::*;

/// The installed SDKs: where their interpreters and scripts are.
pub(super) struct Clients {
    /// The virtualenv's Python, with `mcp` installed.
    pub(super) python: PathBuf,
    /// The directory holding `node_modules` and a copy of `client.mjs`.
    pub(super) node_dir: PathBuf,
}

/// `harness/tests/mcp/`: the client scripts and their pinned dependencies.
pub(super) fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp")
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set (relative to the
/// workspace), else the one holding the binary under test, else `target/`.
pub(super) fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return workspace.join(dir);
    }
    // Cargo marks its target directory with CACHEDIR.TAG.
    Path::new(env!("CARGO_BIN_EXE_harness"))
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace.join("target"))
}

/// The clients, installed on first use by this process (and only if an earlier
/// process has not installed these very versions already). Fails the test with
/// the reason when they can't be installed.
pub(super) fn clients() -> &'static Clients {
    static CLIENTS: OnceLock<Result<Clients, String>> = OnceLock::new();
    match CLIENTS.get_or_init(|| install(&target_dir().join("mcp-clients"))) {
        Ok(clients) => clients,
        Err(why) => panic!(
            "the MCP test clients could not be installed (they need python3 with venv and pip, node and \
             npm, and the PyPI and npm registries): {why}"
        ),
    }
}

pub(super) fn install(root: &Path) -> Result<Clients, String> {
    std::fs::create_dir_all(root).map_err(|err| format!("create {}: {err}", root.display()))?;
    // Another test process may be installing into the same directory.
    let lock_path = root.join(".lock");
    let lock = File::create(&lock_path).map_err(|err| format!("create {}: {err}", lock_path.display()))?;
    lock.lock().map_err(|err| format!("lock {}: {err}", lock_path.display()))?;
    let python = install_python(root)?;
    let node_dir = install_node(root)?;
    Ok(Clients { python, node_dir })
}

/// A virtualenv at `root/venv` with `requirements.txt` installed.
pub(super) fn install_python(root: &Path) -> Result<PathBuf, String> {
    let requirements = sources().join("requirements.txt");
    let wanted = read(&requirements)?;
    let venv = root.join("venv");
    let python = venv.join("bin/python");
    let marker = root.join("venv.installed");
    if python.is_file() && std::fs::read(&marker).ok().as_deref() == Some(&wanted[..]) {
        return Ok(python);
    }
    remove_dir(&venv)?;
    let _ = std::fs::remove_file(&marker);
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q", "-r"])
        .arg(&requirements))?;
    run(Command::new(&python).args(["-c", "import mcp, httpx2"]))?;
    write_atomically(&marker, &wanted)?;
    Ok(python)
}

/// `root/node` with `package-lock.json` installed and `client.mjs` beside its
/// `node_modules` (ES modules resolve packages from their own location).
pub(super) fn install_node(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join("node");
    let manifest = read(&sources().join("package.json"))?;
    let lockfile = read(&sources().join("package-lock.json"))?;
    let wanted = [&manifest[..], b"\n", &lockfile[..]].concat();
    let marker = root.join("node.installed");
    if !(dir.join("node_modules").is_dir() && std::fs::read(&marker).ok().as_deref() == Some(&wanted[..])) {
        remove_dir(&dir)?;
        let _ = std::fs::remove_file(&marker);
        std::fs::create_dir_all(&dir).map_err(|err| format!("create {}: {err}", dir.display()))?;
        write_atomically(&dir.join("package.json"), &manifest)?;
        write_atomically(&dir.join("package-lock.json"), &lockfile)?;
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .env("npm_config_update_notifier", "false")
            .current_dir(&dir))?;
        run(Command::new("node")
            .args(["--input-type=module", "-e", "await import('@modelcontextprotocol/sdk/client/index.js')"])
            .current_dir(&dir))?;
        write_atomically(&marker, &wanted)?;
    }
    // Always refreshed, so an edited script is the one that runs.
    write_atomically(&dir.join("client.mjs"), &read(&sources().join("client.mjs"))?)?;
    Ok(dir)
}

pub(super) fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|err| format!("read {}: {err}", path.display()))
}

pub(super) fn remove_dir(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(format!("remove {}: {err}", dir.display())),
        _ => Ok(()),
    }
}

/// Writes through a temporary file and a rename, so no reader sees half a file.
pub(super) fn write_atomically(path: &Path, content: &[u8]) -> Result<(), String> {
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temp, content).map_err(|err| format!("write {}: {err}", temp.display()))?;
    std::fs::rename(&temp, path).map_err(|err| format!("rename {} to {}: {err}", temp.display(), path.display()))
}

/// Runs an install step, turning a failure into a message with its output.
pub(super) fn run(command: &mut Command) -> Result<Output, String> {
    let shown = format!("{command:?}");
    let output = command.stdin(Stdio::null()).output().map_err(|err| format!("{shown}: {err}"))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(format!("{shown} failed ({}):\n{}\n{}", output.status, tail(&output.stdout), tail(&output.stderr)))
}

/// The end of a process's output, enough to see why it failed.
pub(super) fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let start = text.char_indices().rev().nth(6000).map_or(0, |(at, _)| at);
    text[start..].to_string()
}
