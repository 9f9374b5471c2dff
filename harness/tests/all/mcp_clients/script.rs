//! Scripts for the clients.

use super::*;

/// The official client that runs a script.
#[derive(Clone, Copy, Debug)]
pub(super) enum Sdk {
    Python,
    TypeScript,
}

/// What a client script does: the clients it connects and the steps it runs on them.
#[derive(Default)]
pub(super) struct Script {
    pub(super) clients: Vec<Value>,
    pub(super) steps: Vec<Value>,
}

impl Script {
    /// Adds a client; answers its index.
    pub(super) fn client(&mut self, spec: Value) -> usize {
        self.clients.push(spec);
        self.clients.len() - 1
    }

    /// `tools/list` on `client`; answers the step's index.
    pub(super) fn list(&mut self, client: usize) -> usize {
        self.steps.push(json!({"client": client, "op": "list"}));
        self.steps.len() - 1
    }

    /// `tools/call` on `client`; answers the step's index.
    pub(super) fn call(&mut self, client: usize, name: &str, arguments: Value) -> usize {
        self.steps.push(json!({"client": client, "op": "call", "name": name, "arguments": arguments}));
        self.steps.len() - 1
    }

    /// `tools/call`s sent all at once, each (client, tool, arguments); answers the step's index.
    pub(super) fn parallel(&mut self, calls: Vec<(usize, &str, Value)>) -> usize {
        let steps: Vec<Value> = calls
            .into_iter()
            .map(|(client, name, arguments)| json!({"client": client, "op": "call", "name": name, "arguments": arguments}))
            .collect();
        self.steps.push(json!({"op": "parallel", "steps": steps}));
        self.steps.len() - 1
    }

    /// Runs the script with `sdk`; fails the test if the script fails.
    pub(super) async fn run(&self, sdk: Sdk) -> Outcome {
        // The first call may install for a minute: not on the server's threads.
        let clients = tokio::task::spawn_blocking(clients)
            .await
            .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
        let spec = json!({"clients": self.clients, "steps": self.steps}).to_string();
        let mut command = match sdk {
            Sdk::Python => {
                let mut command = tokio::process::Command::new(&clients.python);
                command.arg(sources().join("client.py"));
                command
            }
            Sdk::TypeScript => {
                let mut command = tokio::process::Command::new("node");
                command.arg(clients.node_dir.join("client.mjs"));
                command
            }
        };
        command.arg(&spec).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let output = tokio::time::timeout(PATIENCE, command.output())
            .await
            .unwrap_or_else(|_| panic!("the {sdk:?} client took over {PATIENCE:?} on {spec}"))
            .unwrap_or_else(|err| panic!("cannot start the {sdk:?} client: {err}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "the {sdk:?} client failed ({}) on {spec}\nstderr:\n{stderr}", output.status);
        let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
            panic!("the {sdk:?} client printed no JSON ({err}):\n{}\nstderr:\n{stderr}", tail(&output.stdout))
        });
        let outcome = Outcome { value, stderr: stderr.into_owned() };
        assert_eq!(outcome.value["steps"].as_array().map(Vec::len), Some(self.steps.len()), "{outcome:?}");
        outcome
    }
}

/// What a client script printed.
pub(super) struct Outcome {
    pub(super) value: Value,
    /// The client's stderr (and over stdio the server's), for failure messages.
    pub(super) stderr: String,
}

/// Shown with listed tools cut to their names and hints, so a failure stays readable.
impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.value.clone();
        for step in shown["steps"].as_array_mut().into_iter().flatten() {
            for tool in step.get_mut("tools").and_then(Value::as_array_mut).into_iter().flatten() {
                *tool = json!({"name": tool["name"], "annotations": tool["annotations"]});
            }
        }
        write!(f, "{shown:#}\nstderr:\n{}", self.stderr)
    }
}

impl Outcome {
    /// The protocol version client `client` negotiated.
    pub(super) fn protocol(&self, client: usize) -> &str {
        self.value["clients"][client]["protocol_version"].as_str().unwrap_or_else(|| panic!("no version: {self:?}"))
    }

    /// The server's name as client `client` was told it.
    pub(super) fn server_name(&self, client: usize) -> &str {
        self.value["clients"][client]["server_info"]["name"].as_str().unwrap_or_else(|| panic!("no name: {self:?}"))
    }

    pub(super) fn step(&self, step: usize) -> &Value {
        &self.value["steps"][step]
    }

    /// The results of a parallel step, in the order of its calls.
    pub(super) fn results(&self, step: usize) -> &[Value] {
        self.step(step)["results"].as_array().unwrap_or_else(|| panic!("step {step} is not parallel: {self:?}"))
    }

    /// The tools of a `tools/list` step, by name.
    pub(super) fn tools(&self, step: usize) -> BTreeMap<String, Value> {
        let tools =
            self.step(step)["tools"].as_array().unwrap_or_else(|| panic!("step {step} listed no tools: {self:?}"));
        let by_name: BTreeMap<String, Value> =
            tools.iter().map(|tool| (tool["name"].as_str().expect("a tool name").to_owned(), tool.clone())).collect();
        assert_eq!(by_name.len(), tools.len(), "tool names repeat: {self:?}");
        by_name
    }

    /// The names of a `tools/list` step's tools.
    pub(super) fn tool_names(&self, step: usize) -> BTreeSet<String> {
        self.tools(step).into_keys().collect()
    }

    /// The text of a call step that succeeded, failing the test otherwise.
    pub(super) fn ok(&self, step: usize) -> &str {
        let result = self.step(step);
        assert_eq!(result["isError"], false, "step {step} should succeed: {self:?}");
        text(result).unwrap_or_else(|| panic!("step {step} has no single text block: {self:?}"))
    }

    /// The text of a call step whose result is an error (`isError`), failing the test otherwise.
    pub(super) fn tool_error(&self, step: usize) -> &str {
        let result = self.step(step);
        assert_eq!(result["isError"], true, "step {step} should be an error result: {self:?}");
        text(result).unwrap_or_else(|| panic!("step {step} has no single text block: {self:?}"))
    }

    /// The code and message of a step the server answered with a JSON-RPC error.
    pub(super) fn rpc_error(&self, step: usize) -> (i64, &str) {
        let error = &self.step(step)["error"];
        let code = error["code"].as_i64().unwrap_or_else(|| panic!("step {step} should be refused: {self:?}"));
        (code, error["message"].as_str().expect("an error message"))
    }

    /// The session and seq a call step's result names in `_meta`.
    pub(super) fn recorded(&self, step: usize) -> (SessionId, u64) {
        let meta = &self.step(step)["_meta"];
        let session =
            meta["harness/session"].as_str().unwrap_or_else(|| panic!("step {step} names no session: {self:?}"));
        let seq = meta["harness/seq"].as_u64().unwrap_or_else(|| panic!("step {step} names no seq: {self:?}"));
        (session.parse().expect("a session id"), seq)
    }

    pub(super) fn session(&self, step: usize) -> SessionId {
        self.recorded(step).0
    }
}

/// The text of a result made of one text block.
pub(super) fn text(result: &Value) -> Option<&str> {
    match result["content"].as_array().map(Vec::as_slice) {
        Some([block]) if block["type"] == "text" => block["text"].as_str(),
        _ => None,
    }
}

/// A client of `harness mcp` on `home`'s database (with `args` after `mcp`), as the
/// client scripts spawn it.
pub(super) fn stdio(home: &Home, args: &[&str], mode: &str) -> Value {
    warm_cache(home);
    let mut command = home.command();
    command.arg("mcp").args(args);
    let string = |value: &OsStr| value.to_str().expect("UTF-8").to_owned();
    // Variables the command removes are not passed on: the SDKs pass on a few safe ones only.
    let env: BTreeMap<String, String> =
        command.get_envs().filter_map(|(name, value)| Some((string(name), string(value?)))).collect();
    json!({
        "transport": "stdio",
        "command": string(command.get_program()),
        "args": command.get_args().map(string).collect::<Vec<_>>(),
        "env": env,
        "mode": mode,
    })
}

/// Compiles the built-in tools into the cache every `Home` of this process shares,
/// once, so clients don't wait through it (nor several processes do it at once).
pub(super) fn warm_cache(home: &Home) {
    static WARM: Mutex<bool> = Mutex::new(false);
    let mut warm = WARM.lock().unwrap_or_else(PoisonError::into_inner);
    if !*warm {
        crate::cli_run::success(&home.run(&["tools", "list"]));
        *warm = true;
    }
}

/// A client of the server's `/mcp` as the user of `token`, attached to `session` if given.
pub(super) fn http(server: &TestServer, token: &str, session: Option<&str>, mode: &str) -> Value {
    let mut headers = json!({"Authorization": format!("Bearer {token}")});
    if let Some(id) = session {
        headers["Harness-Session"] = json!(id);
    }
    json!({"transport": "http", "url": format!("{}/mcp", server.url), "headers": headers, "mode": mode})
}
