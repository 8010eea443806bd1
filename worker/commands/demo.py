"""``wms-relay demo`` (what ``make run`` runs): the whole service on its embedded defaults.

Starts the embedded Redis-compatible server, the four sandboxes (Trademax, ka-ching, StockTrim,
Stock2Shop — as strict as their documents), a worker, the scheduler, Flower, the support desk and the ingest
door on 127.0.0.1 (a desk user ``demo`` with a fresh password, printed once); loads the sample catalogs in
``examples/catalog/`` (``wms-relay catalog import``: the sample article is a variant of a product at
ka-ching and Stock2Shop); feeds the sample events in ``examples/`` through the ingest door (HTTP) —
including a dispatch update sent before its create, one invalid event and one that fails transiently — and
prints each event's outcome as it lands, then how the sample stock count reached every channel and the
sales order StockTrim received for the published dispatch (its lines: the create's merged with the
update's).  Ctrl-C
stops every process it started.  Logs of the processes are under ``var/demo/``."""
from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

from worker.commands.presenting import described
from worker.redaction import url_without_password
from worker.settings import Settings

# The sample events as the package carries them (tasks/example_events: a link to examples/ in a checkout, the
# wheel's own copy when installed), so the demo finds them wherever wms-relay is installed and whatever the
# working directory (a path counted up from this file names a folder an installed package does not have).
EXAMPLES = Path(files("tasks") / "example_events")
CATALOGS = EXAMPLES / "catalog"  # <destination>.csv: a catalog file per destination that needs one

# (operation, example file, changes): fed in this order; the update comes before its create on purpose.
SCRIPT = [
    ("dispatch.update", "dispatch.update.json", {}),
    ("dispatch.create", "dispatch.create.json", {}),
    ("receipt.create", "receipt.create.json", {}),
    ("stock.adjust", "stock.adjust.json", {}),
    ("inventory.update_packages", "inventory.update_packages.json", {}),
    ("order.lock_lines", "order.lock_lines.json", {}),
    ("vendor_dispatch.create", "vendor_dispatch.create.json", {}),
    ("receipt.create", "invalid-receipt.json", {}),
]
FINAL = {"delivered", "superseded", "uncertain", "dead", "discarded"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="run everything locally and feed the sample events (make run)",
                              **described(__doc__))
    p.add_argument("--exit-when-done", action="store_true",
                   help="stop once every sample event has landed (for tests) instead of waiting for Ctrl-C")
    p.add_argument("--flower-port", type=int, default=5555)
    p.add_argument("--desk-port", type=int, default=8080)
    p.add_argument("--ingest-port", type=int, default=8081)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the events to land")
    p.set_defaults(handler=run)


def _demo_env(settings_env: dict, sandbox_port: int, redis_url: str) -> dict:
    env = dict(settings_env)
    env.setdefault("TRADEMAX_API_KEY", "sandbox-demo-key")
    env.setdefault("TRADEMAX_SECRET", secrets.token_hex(24))  # a fresh secret each run, never printed
    env["TRADEMAX_BASE_URL"] = f"http://127.0.0.1:{sandbox_port}/api/"
    env["REDIS_URL"] = redis_url
    # The demo's ingest door is open on loopback (the demo feeds it without credentials).
    env.pop("INGEST_TOKENS_FILE", None)
    env.pop("INGEST_HMAC_SECRETS", None)
    # Quick retries and re-checks, so the demo shows them within seconds.
    env.setdefault("RETRY_BASE_SECONDS", "1")
    env.setdefault("RETRY_CAP_SECONDS", "3")
    env.setdefault("DEPENDENCY_WAIT_SECONDS", "2")
    env.setdefault("TRADEMAX_READ_TIMEOUT", "10")
    return env


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.log_dir = Path("var/demo")  # settings.var_dir / "demo" once settings are read

    def spawn(self, name: str, *argv: str) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "worker.cli", *argv], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        print("Stopped: worker, scheduler, Flower, desk, ingest, sandboxes.")
        if getattr(self, "started_redis", False):
            from worker.store import embedded as embedded_redis

            embedded_redis.stop(self.var_dir)
            print(f"Stopped the embedded Redis-compatible server (its data stays in {self.var_dir}/).")

    def desk_user(self, users_file: Path) -> str:
        """A desk operator ``demo`` with a fresh password for this run (the desk asks everyone to sign in)."""
        from worker.web.desk.users import UsersFile

        password = secrets.token_urlsafe(12)
        UsersFile(users_file).add("demo", "operator", password)
        self.env["DESK_USERS_FILE"] = str(users_file)
        return password

    def wait_ready(self, name: str, check, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        proc = dict(self.procs)[name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited early; see {self.log_dir / (name + '.log')}")
            if check():
                return
            time.sleep(0.2)
        log = self.log_dir / f"{name}.log"
        raise SystemExit(f"{name} did not become ready in {timeout:.0f} s; see {log}")

    def run(self) -> int:
        import requests

        from worker.delivery.relay import build_relay
        from worker.sandbox.control import SandboxControl
        from worker.store.connection import store_url

        settings = Settings.from_env()
        self.log_dir = settings.var_dir / "demo"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        from worker.store import embedded as embedded_redis

        self.started_redis = (settings.redis_url is None
                              and embedded_redis.running_url(settings.var_dir) is None)
        self.var_dir = settings.var_dir
        url = store_url(settings, start=True)
        # The demo's own log, in LOG_FORMAT like its processes' (the store's password
        # known to its scrubber once the store runs; its terminal output is the story).
        from worker.observe.logs import formatter_for

        handler = logging.FileHandler(self.log_dir / "demo.log")
        handler.setFormatter(formatter_for(settings))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
        sandbox_port = embedded_redis.free_port()
        self.env = _demo_env(dict(os.environ), sandbox_port, url)
        os.environ.update({k: self.env[k] for k in ("REDIS_URL",)})
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        print(f"Redis-compatible server: {url_without_password(url)} (data under {settings.var_dir}/; "
              "password in its valkey/password file)")

        self.spawn("sandbox", "sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port))
        control = SandboxControl(sandbox_url, timeout=5)
        self.wait_ready("sandbox", control.answering)
        print(f"Sandbox Trademax:        {sandbox_url}/api/")
        others = self.start_other_sandboxes()
        self.import_catalogs(others)
        worker_name = f"demo-{os.getpid()}@%h"
        self.spawn("worker", "worker", "--name", worker_name)
        worker_log = self.log_dir / "worker.log"
        self.wait_ready("worker", lambda: b"ready." in worker_log.read_bytes())
        print("Worker:                  ready (threads pool)")
        self.spawn("scheduler", "scheduler")
        self.spawn("flower", "flower", "--address", "127.0.0.1", "--port", str(self.args.flower_port))
        # Feed only once Flower listens AND its event receiver has seen the worker: events published
        # before Flower connects to the broker never appear in its task list.
        self.wait_ready("flower", lambda: _flower_sees(self.args.flower_port, worker_name.split("@")[0]))
        print(f"Flower:                  http://127.0.0.1:{self.args.flower_port}/ (loopback only; "
              "/tasks lists each task with its event's state)")
        desk_password = self.desk_user(settings.var_dir / "demo" / "desk-users")
        self.spawn("desk", "desk", "--host", "127.0.0.1", "--port", str(self.args.desk_port))
        desk_log = self.log_dir / "desk.log"
        self.wait_ready("desk", lambda: b"listening on" in desk_log.read_bytes())
        print(f"Support desk:            http://127.0.0.1:{self.args.desk_port}/ (sign in as demo, password "
              f"{desk_password}: made for this run)")
        ingest_url = f"http://127.0.0.1:{self.args.ingest_port}"
        self.spawn("ingest", "ingest", "--host", "127.0.0.1", "--port", str(self.args.ingest_port))
        self.wait_ready("ingest", lambda: _answers(f"{ingest_url}/healthz"))
        print(f"Ingest (HTTP door):      {ingest_url}/v1/events/OPERATION  (contract: "
              f"{ingest_url}/openapi.json; open on loopback)")
        print()

        relay = build_relay(Settings.from_env(self.env), sends=False)
        watched: list[tuple[str, str]] = []
        session = requests.Session()

        def feed(operation: str, message: dict) -> None:
            answer = session.post(f"{ingest_url}/v1/events/{operation}", json=message, timeout=30)
            event = answer.json()["events"][0]
            detail = event["note"] if event["status"] != 202 else ""
            print(f"  fed  {operation:<26} {event['key']:<22} {event['state']} (HTTP {answer.status_code})"
                  + (f" — {detail}" if detail else ""))
            watched.append((operation, event["key"]))

        print(f"Feeding the sample events in examples/ through {ingest_url} (keys tagged with this run's "
              "tag, so every run shows the whole story):")
        tag = time.strftime("-%H%M%S")
        for index, (operation, name, changes) in enumerate(SCRIPT):
            message = _tagged({**json.loads((EXAMPLES / name).read_text()), **changes}, tag)
            feed(operation, message)
            if index == 0:  # the update, before its create: show it waiting
                self.watch(relay, watched[:1], until=lambda states: "waiting" in states.values())
        self.watch(relay, watched)
        print("\nThe draft dispatch is complete: the WMS publishes it (a sale: StockTrim's sales order).")
        feed("dispatch.publish", _tagged(json.loads((EXAMPLES / "dispatch.publish.json").read_text()), tag))
        self.watch(relay, watched[-1:])

        print("\nNow one that fails transiently: the sandbox answers 500 for a few seconds.")
        control.set_faults(fail_rate=1.0)
        flaky = _tagged(json.loads((EXAMPLES / "receipt.create.json").read_text()), tag + "-FLAKY")
        feed("receipt.create", flaky)
        self.watch(relay, watched[-1:], until=lambda states: "retrying" in states.values())
        time.sleep(3)
        control.set_faults(fail_rate=0.0)
        print("  the sandbox recovered")
        self.watch(relay, watched[-1:])

        print("\nOutcomes:")
        for operation, key in watched:
            record = relay.ledger.get(operation, key)
            state = record.state if record else "dead (invalid: never entered the ledger)"
            attempts = record.attempts if record else 0
            print(f"  {operation:<26} {key:<22} {state:<10} attempts={attempts}")
        count_key = next(key for operation, key in watched if operation == "stock.adjust")
        self.show_every_channel(relay, count_key, control, others)
        if "stocktrim" in others:
            publish_key = next(key for operation, key in watched if operation == "dispatch.publish")
            self.show_sales_order(relay, publish_key, others["stocktrim"])
        print(f"\nDead letters waiting for a person: {relay.dead_letters.count()} (this run added one: the "
              "invalid receipt). `.venv/bin/wms-relay dead list` shows them and why.")
        if self.args.exit_when_done:
            return 0
        print("\nEverything is running. Open the support desk or Flower, or send an event yourself "
              "(Ctrl-C stops):\n"
              f"  curl -sS -X POST {ingest_url}/v1/events/stock.adjust -H 'Content-Type: application/json' "
              "--data-binary @examples/stock.adjust.json", flush=True)  # a pipe (tee) sees it now
        signal.pause()
        return 0

    def start_other_sandboxes(self) -> dict:
        """Every other destination's sandbox (ka-ching, StockTrim, Stock2Shop), each with the credentials
        its declaration gives for sandboxes (fresh secrets each run) and its locations' example (where the
        sample warehouse "nw" is at it); the relay's variables point at them (a destination is on when its
        base URL is set)."""
        from worker.destinations.declared import DECLARATIONS
        from worker.sandbox.control import SandboxControl
        from worker.store import embedded as embedded_redis

        found = {}
        for declared in list(DECLARATIONS)[1:]:  # the first: the sandbox Trademax, started already
            api, port = declared.name, embedded_redis.free_port()
            secret = {variable.name for variable in declared.secrets}
            for name, value in declared.sandbox_credentials(lambda: secrets.token_hex(16)).items():
                if name in secret:
                    self.env.setdefault(name, value)
                else:
                    self.env[name] = value
            if declared.locations is not None:
                self.env[declared.locations.name] = declared.locations.example
            base_url = f"http://127.0.0.1:{port}/"
            self.env[declared.base_url.name] = base_url
            self.spawn(f"sandbox-{api}", "sandbox", "--api", api, "--host", "127.0.0.1", "--port", str(port))
            control = SandboxControl(base_url, timeout=5)
            self.wait_ready(f"sandbox-{api}", control.answering)
            found[api] = control
            print(f"Sandbox {api + ':':<16}{base_url}")
        return found

    def import_catalogs(self, others: dict) -> None:
        """``wms-relay catalog import DEST FILE`` for each file in ``examples/catalog/`` named after a
        destination that was started — the real command, as a person runs it (Stock2Shop's catalog is
        required: an artno without a row would wait, unsent)."""
        for path in sorted(CATALOGS.glob("*.csv")):
            if path.stem not in others:
                continue
            command = ["catalog", "import", path.stem, str(path), "--actor", "demo"]
            out = subprocess.run([sys.executable, "-m", "worker.cli", *command], env=self.env,
                                 capture_output=True, timeout=60)
            said = (out.stdout.decode().strip().splitlines() or [""])[-1]
            if out.returncode != 0:
                raise SystemExit(f"catalog import {path.stem} failed: {said} {out.stderr.decode()[-500:]}")
            print(f"Catalog {path.stem + ':':<16}{said}")

    def show_every_channel(self, relay, key: str, trademax, others: dict) -> None:
        """The sample count's delivery to each destination, and the stock each sandbox now holds."""
        from worker.destinations.table import DESTINATIONS

        print(f"\nOne count, every channel (stock.adjust {key}):")
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            records = {name: relay.ledger_of(name).get("stock.adjust", key) for name in DESTINATIONS}
            if all(r is not None and r.state in FINAL for r in records.values()):
                break
            time.sleep(0.2)
        sample = json.loads((EXAMPLES / "stock.adjust.json").read_text())
        artno, warehouse = sample["artno"], sample["warehouse_id"]
        levels = {"trademax": next((s["quantity"] for s in trademax.state()["stock"]
                                    if (s["warehouse_id"], s["artno"]) == (warehouse, artno)), None)}
        named = {}
        for api, control in others.items():
            row = relay.catalog_of(api).row(artno)
            named[api] = "" if row is None else \
                f" as {row.product_code}" + (f" / {row.variant_code}" if row.variant_code else "")
            levels[api] = _level(control.state(), row.product_code if row else artno,
                                 row.variant_code if row else "")
        for name, destination in DESTINATIONS.items():
            record = records[name]
            state = record.state if record else "not sent"
            print(f"  {destination.title:<11} {state:<10} attempts={record.attempts if record else 0:<3} "
                  f"its stock now{named.get(name, '')}: {levels[name]}")

    def show_sales_order(self, relay, key: str, stocktrim) -> None:
        """The published dispatch's StockTrim sales order: its delivery and the lines StockTrim holds."""
        print(f"\nThe published dispatch as a StockTrim sales order (dispatch.publish {key}):")
        ledger, record = relay.ledger_of("stocktrim"), None
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            record = ledger.get("dispatch.publish", key)
            if record is not None and record.state in FINAL:
                break
            time.sleep(0.2)
        print(f"  StockTrim   {record.state if record else 'not sent':<10} "
              f"attempts={record.attempts if record else 0}")
        shipment = json.loads((EXAMPLES / "dispatch.publish.json").read_text())["transaction_id"]
        tag = key[len(json.loads((EXAMPLES / "dispatch.publish.json").read_text())["event_id"]):]
        for line in stocktrim.state().get("sales_lines", []):
            if str(line["externalReferenceId"]).startswith(f"{shipment}{tag}:"):
                print(f"  sales line  {line['externalReferenceId']:<32} {line['productId']:<10} x "
                      f"{line['quantity']:<4} at {line['locationCode']} on {line['orderDate']}")

    def watch(self, relay, watched, until=None) -> None:
        """Print each state change until every watched event is final (or ``until`` says stop)."""
        last: dict = {}
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            states = {}
            for operation, key in watched:
                record = relay.ledger.get(operation, key)
                states[(operation, key)] = record.state if record else "dead"
                if last.get((operation, key)) != states[(operation, key)]:
                    extra = ""
                    if record and record.result:
                        extra = "  " + json.dumps(record.result, separators=(",", ":"))[:100]
                    print(f"  now  {operation:<26} {key:<22} {states[(operation, key)]}{extra}")
            last = states
            if until is not None and until(states):
                return
            if until is None and all(s in FINAL for s in states.values()):
                return
            time.sleep(0.2)
        print(f"  (not everything landed within {self.args.timeout:.0f} s; see var/demo/*.log)")


def _level(state: dict, product: str, variant: str) -> dict:
    """A product's (or its variant's) stock per location in a sandbox's state: ka-ching keeps a variant's
    under ``variant_stock``, StockTrim and Stock2Shop by the variant's own code (productId, sku)."""
    if variant and "variant_stock" in state:
        return {location: products.get(product, {}).get(variant)
                for location, products in state["variant_stock"].items()}
    return {location: stock.get(variant or product) for location, stock in state["stock"].items()}


def _flower_sees(port: int, worker_prefix: str) -> bool:
    """True once Flower answers and lists the worker (``/workers?json=1`` comes from its event receiver)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/workers?json=1", timeout=2) as answer:
            workers = json.loads(answer.read())["data"]
    except (OSError, ValueError, KeyError):
        return False
    return any(str(w.get("hostname", "")).startswith(worker_prefix + "@") for w in workers)


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _tagged(message: dict, tag: str) -> dict:
    """The event with this run's tag on its keys (transaction_id, event_id)."""
    return {k: (v + tag if k in ("transaction_id", "event_id") and isinstance(v, str) else v)
            for k, v in message.items()}


def _stop_request(signum, frame) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    # SIGTERM (a supervisor, `kill`) stops it as Ctrl-C does: every process it started is stopped too.  A
    # shell that starts it in the background ignores SIGINT for it; Ctrl-C's handler is put back.
    signal.signal(signal.SIGTERM, _stop_request)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    demo = Demo(args)
    try:
        return demo.run()
    except KeyboardInterrupt:
        print("\nCtrl-C: stopping.")
        return 0
    finally:
        demo.stop()
