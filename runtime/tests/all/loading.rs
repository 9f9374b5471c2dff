//! Good and bad components at load time.

use runtime::{ComponentKind, LoadError, Toolbox};

use crate::{fixture, runtime};

#[tokio::test]
async fn sdk_tool_describes_itself() {
    let runtime = runtime();
    let example = runtime.load_file(fixtures::tool("example")).await.expect("example loads");
    assert_eq!(example.kind(), ComponentKind::Tool);
    let specs: Vec<_> = example.specs().collect();
    assert_eq!(specs.len(), 1);
    let spec = specs[0];
    assert_eq!(spec.name, "word_count");
    assert!(spec.read_only && spec.idempotent);
    assert_eq!(spec.input_schema["type"], "object");
    assert_eq!(spec.input_schema["properties"]["text"]["type"], "string");
    assert_eq!(spec.input_schema["required"][0], "text");
}

#[tokio::test]
async fn plain_command_is_accepted() {
    let runtime = runtime();
    let command = fixture(&runtime, "command").await;
    assert_eq!(command.kind(), ComponentKind::Command);
    let spec = command.specs().next().expect("one tool");
    assert_eq!(spec.name, "command");
    assert!(!spec.read_only && !spec.idempotent, "a command's effects are unknown");
}

#[tokio::test]
async fn not_wasm_is_refused() {
    let err = runtime().load("notes", b"hello, this is text".to_vec()).await.unwrap_err();
    assert!(matches!(err, LoadError::NotWasm { .. }), "{err}");
    assert!(err.to_string().contains("not a WebAssembly file"), "{err}");
    let err = runtime().load("empty", Vec::new()).await.unwrap_err();
    assert!(matches!(err, LoadError::NotWasm { .. }), "{err}");
}

#[tokio::test]
async fn core_module_is_refused() {
    let module = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let err = runtime().load("core", module).await.unwrap_err();
    assert!(matches!(err, LoadError::CoreModule { .. }), "{err}");
    assert!(err.to_string().contains("wasm32-wasip2"), "the error says how to fix it: {err}");
}

#[tokio::test]
async fn truncated_component_is_refused() {
    let mut bytes = fixtures::bytes(&fixtures::component("noop"));
    bytes.truncate(bytes.len() / 2);
    let err = runtime().load("half", bytes).await.unwrap_err();
    assert!(matches!(err, LoadError::Invalid { .. }), "{err}");
}

#[tokio::test]
async fn wrong_world_is_refused() {
    let runtime = runtime();
    let err = runtime.load_file(fixtures::component("wrong_world")).await.unwrap_err();
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
    assert!(err.to_string().contains("greet"), "names what it found: {err}");
}

#[tokio::test]
async fn empty_component_is_wrong_world() {
    let component = wat::parse_str("(component)").unwrap();
    let err = runtime().load("empty", component).await.unwrap_err();
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
    assert!(err.to_string().contains("no exports"), "{err}");
}

#[tokio::test]
async fn sockets_import_is_refused() {
    let runtime = runtime();
    let err = runtime.load_file(fixtures::component("sockets")).await.unwrap_err();
    assert!(matches!(err, LoadError::UnsupportedImports { .. }), "{err}");
    assert!(err.to_string().contains("wasi:sockets/"), "{err}");
}

#[tokio::test]
async fn unknown_import_is_refused() {
    let component = wat::parse_str(
        r#"(component
            (import "evil:host/backdoor" (instance (export "open" (func))))
        )"#,
    )
    .unwrap();
    let err = runtime().load("backdoor", component).await.unwrap_err();
    assert!(matches!(err, LoadError::UnsupportedImports { .. }), "{err}");
    assert!(err.to_string().contains("evil:host/backdoor"), "{err}");
}

#[tokio::test]
async fn invalid_tool_name_is_refused() {
    let runtime = runtime();
    let err = runtime.load_file(fixtures::component("bad_spec")).await.unwrap_err();
    assert!(matches!(err, LoadError::BadSpec { .. }), "{err}");
    assert!(err.to_string().contains("not a valid name!"), "{err}");
}

#[tokio::test]
async fn name_collision_leaves_the_toolbox_unchanged() {
    let runtime = runtime();
    let first = fixture(&runtime, "hostile").await;
    let second = fixture(&runtime, "hostile").await;
    let noop = fixture(&runtime, "noop").await;
    let mut toolbox = Toolbox::new();
    toolbox.add(first).unwrap();
    let before = toolbox.specs().count();
    let err = toolbox.add(second).unwrap_err();
    assert!(matches!(err, LoadError::NameCollision { .. }), "{err}");
    assert_eq!(toolbox.specs().count(), before, "nothing of the refused component was added");
    toolbox.add(noop).expect("other components still load");
    assert!(toolbox.spec("noop").is_some());
}

#[tokio::test]
async fn listing_tools_instantiates_nothing() {
    let runtime = runtime();
    let hostile = fixture(&runtime, "hostile").await;
    let before = runtime.instantiations();
    let mut toolbox = Toolbox::new();
    toolbox.add(hostile).unwrap();
    for _ in 0..100 {
        assert!(toolbox.specs().count() > 10);
    }
    assert_eq!(runtime.instantiations(), before);
}
