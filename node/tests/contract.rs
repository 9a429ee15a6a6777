//! The OpenAPI contract, used as others will use it: a Python client
//! generated from `contracts/openapi.yaml` places, reads and cancels an
//! order; schemathesis fuzzes every running service against the document it
//! serves (no 5xx, every answer as documented); the committed document is a
//! valid OpenAPI 3.1 document, and `contracts/asyncapi.yaml` a valid
//! AsyncAPI 3 one (`@asyncapi/cli validate`).
//!
//! The Python tools live in a virtualenv: `$PIZZA_CONTRACT_VENV`, else
//! `target/contract-venv` (`.ci/run` makes it).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::platform::Platform;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A program of the contract virtualenv.
fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("PIZZA_CONTRACT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/contract-venv"));
    let bin = venv.join("bin").join(name);
    assert!(
        bin.exists(),
        "{} is missing: python3 -m venv target/contract-venv && target/contract-venv/bin/pip install \
         openapi-python-client schemathesis openapi-spec-validator (.ci/run does this)",
        bin.display()
    );
    bin
}

/// Runs `cmd`; its output when it fails.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?} does not run: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?} failed ({}):\n{text}", out.status))
    }
}

fn token(p: &Platform, id: &str, role: &str, audience: &str, scope: &str) -> String {
    p.w.token(id, role, audience, scope)
}

#[test]
fn the_committed_asyncapi_document_passes_the_asyncapi_cli() {
    let doc = root().join("contracts/asyncapi.yaml");
    let cli = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("asyncapi"))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("`asyncapi` is not installed: npm install -g @asyncapi/cli (.ci/run does)")
        });
    let checked = run(Command::new(cli)
        .arg("validate")
        .arg(&doc)
        // No usage reports from a test run.
        .env("ASYNCAPI_METRICS", "false"));
    if let Err(why) = checked {
        panic!("contracts/asyncapi.yaml is not a valid AsyncAPI document: {why}");
    }
}

#[test]
fn the_committed_openapi_document_is_valid_and_each_service_serves_its_part() {
    let doc = root().join("contracts/openapi.yaml");
    if let Err(why) = run(Command::new(venv_bin("openapi-spec-validator")).arg(&doc)) {
        panic!("contracts/openapi.yaml is not a valid OpenAPI document: {why}");
    }
    let mut p = Platform::up(&[]);
    p.start("kitchen", "kitchen-1", &["--prep-ms", "0"]);
    for (port, path) in [
        (p.order_port, "/orders"),
        (p.payment_port, "/pay"),
        (p.delivery_port, "/drivers"),
    ] {
        let (status, served) = p.http.get(&format!("http://127.0.0.1:{port}/openapi.json"));
        assert_eq!(status, 200, "{served}");
        assert_eq!(served["openapi"], "3.1.0");
        assert!(served["paths"][path].is_object(), "{path} missing from {served}");
    }
}

#[test]
fn a_python_client_generated_from_the_contract_places_reads_and_cancels_an_order() {
    let mut p = Platform::signed(&[]);
    p.payment();
    p.order();
    // No kitchen: the order waits in `queued`, where a cancel takes it back.
    let out = p.w.path("client");
    let generated = run(Command::new(venv_bin("openapi-python-client"))
        .args(["generate", "--meta", "none", "--overwrite", "--path"])
        .arg(root().join("contracts/openapi.yaml"))
        .arg("--output-path")
        .arg(&out));
    if let Err(why) = generated {
        panic!("no client from contracts/openapi.yaml: {why}");
    }
    let cancel = token(
        &p,
        "control-room",
        contracts::trust::role::CONTROL,
        contracts::trust::role::ORDER,
        contracts::token::scope::CANCEL,
    );
    let script = p.w.path("use_client.py");
    std::fs::write(&script, PYTHON).expect("the script is written");
    let said = run(Command::new(venv_bin("python"))
        .arg(&script)
        .arg(format!("http://127.0.0.1:{}", p.order_port))
        .arg(&cancel)
        .env("PYTHONPATH", p.w.dir.path()));
    let said = said.unwrap_or_else(|why| panic!("the generated client did not do its job: {why}"));
    let report: serde_json::Value = said
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report from the script: {said}"));
    let id = report["order_id"].as_str().expect("an order id").to_string();
    assert_eq!(report["placed"], 201, "{report}");
    assert_eq!(report["read_state"], "queued", "{report}");
    assert_eq!(report["cancelled"], 202, "{report}");
    assert_eq!(report["unknown"], 404, "{report}");
    assert_eq!(report["error_code"], "not_found", "{report}");
    // What the client did happened: the saga ends the order cancelled.
    p.wait_state(&[id], "cancelled", std::time::Duration::from_secs(60));
}

/// Places an order, reads it, cancels it, and asks for one that does not
/// exist, all through the generated client; prints what it saw as JSON.
const PYTHON: &str = r#"
import json, sys
from client import AuthenticatedClient, Client
from client.api.order import cancel_order, get_order, place_order
from client.models import Customer, Item, PlaceOrder

base, token = sys.argv[1], sys.argv[2]
anyone = Client(base_url=base)
placed = place_order.sync_detailed(
    client=anyone,
    body=PlaceOrder(customer=Customer(name="Ada", address="12 Analytical Row"),
                    items=[Item(pizza="margherita", qty=2)]),
)
order_id = placed.parsed.order_id
view = get_order.sync(client=anyone, id=order_id)
unknown = get_order.sync_detailed(client=anyone, id="ord_nope")
operator = AuthenticatedClient(base_url=base, token=token)
cancelled = cancel_order.sync_detailed(client=operator, id=order_id)
print(json.dumps({
    "order_id": order_id,
    "placed": placed.status_code.value,
    "read_state": view.state.value,
    "cancelled": cancelled.status_code.value,
    "unknown": unknown.status_code.value,
    "error_code": unknown.parsed.error.code,
}))
"#;

#[test]
fn schemathesis_finds_no_server_error_and_no_undocumented_answer_in_any_service() {
    let mut p = Platform::signed(&[]);
    p.payment();
    p.order();
    p.delivery();
    p.start("kitchen", "kitchen-1", &["--prep-ms", "0"]);
    use contracts::token::scope;
    use contracts::trust::role;
    let services = [
        (
            p.order_port,
            token(&p, "control-room", role::CONTROL, role::ORDER, scope::CANCEL),
        ),
        (
            p.payment_port,
            token(&p, "order", role::ORDER, role::PAYMENT, scope::PAYMENT),
        ),
        (
            p.delivery_port,
            token(&p, "order", role::ORDER, role::DELIVERY, scope::RECALL),
        ),
    ];
    for (port, bearer) in services {
        let url = format!("http://127.0.0.1:{port}/openapi.json");
        let checked = run(Command::new(venv_bin("schemathesis"))
            .arg("run")
            .arg(&url)
            .args(["--header", &format!("Authorization: Bearer {bearer}")])
            .args([
                "--checks",
                "not_a_server_error,response_schema_conformance,status_code_conformance,\
                 content_type_conformance,response_headers_conformance",
                "--max-examples",
                "25",
                "--no-color",
            ])
            .current_dir(p.w.dir.path()));
        if let Err(why) = checked {
            panic!("schemathesis against {url}: {why}");
        }
    }
}
