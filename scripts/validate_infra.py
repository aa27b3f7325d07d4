"""Checks infra/ with real tools; run through scripts/validate-infra.sh, which
provides the virtualenv (check-jsonschema, kubernetes-validate, jsonschema,
PyYAML, promql-parser) and promtool when installed.

What is checked, file by file:

* every YAML file under infra/ parses;
* infra/docker-compose.yml, after YAML merge keys and ${VAR:-default}
  interpolation as Compose does them, against the Compose specification's
  JSON schema (check-jsonschema's vendored compose-spec), plus references
  (depends_on, bind mounts, build context, config file) and SOMAFLOW_* keys;
* every manifest of infra/k8s against the Kubernetes JSON schemas of the
  oldest and newest version kubernetes-validate ships (strict: unknown
  fields fail), KEDA's ScaledObject against the CRD's fields, the
  Kustomization's files, and the references between the manifests (selectors,
  Secrets, ConfigMap key, probes, the cluster.toml inside the ConfigMap);
* every Grafana dashboard parses, every panel, target and template variable
  names a datasource uid the provisioning file defines, every PromQL
  expression parses and names only metrics somaflow exports
  (pipeline/src/metrics.rs), every ClickHouse query avoids what ClickHouse
  18.16 lacks and reads usage_1m with FINAL; with --clickhouse-url each query
  runs against that server on the real tables (sql/clickhouse/);
* prometheus.yml and alerts.yml: structure, every alert's runbook anchor in
  docs/operations.md, one comparison against a number at the top of each
  expression, metric names; with promtool: `check config`, `check rules`,
  `test rules` on alerts.test.yml, and the dashboards' PromQL through
  `check rules` as recording rules.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import jsonschema
import kubernetes_validate
import promql_parser
import yaml

K8S_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]
FAILURES: list[str] = []
PASSED = 0


def ok(area: str, msg: str) -> None:
    global PASSED
    PASSED += 1
    print(f"  ok    {area}: {msg}")


def fail(area: str, msg: str) -> None:
    FAILURES.append(f"{area}: {msg}")
    print(f"  FAIL  {area}: {msg}")


def warn(area: str, msg: str) -> None:
    print(f"  warn  {area}: {msg}")


def section(title: str) -> None:
    print(f"\n== {title}")


# ---------------------------------------------------------------------------
# What somaflow exports and accepts
# ---------------------------------------------------------------------------

def exported_metrics(root: Path) -> set[str]:
    """Series names of pipeline/src/metrics.rs: counters get _total,
    histograms _bucket/_sum/_count, all the somaflow_ prefix."""
    src = (root / "pipeline/src/metrics.rs").read_text()
    struct = re.search(r"pub struct Metrics \{(.*?)\n\}", src, re.S)
    if not struct:
        raise SystemExit("cannot find `pub struct Metrics` in pipeline/src/metrics.rs")
    kinds = {}
    for field, ty in re.findall(r"^\s*pub (\w+):\s*(.+),\s*$", struct.group(1), re.M):
        kinds[field] = "histogram" if "Histogram" in ty else "counter" if "Counter" in ty else "gauge"
    names = set()
    for name, field in re.findall(
        r'\.register\(\s*"(\w+)",\s*"(?:[^"\\]|\\.)*",\s*m\.(\w+)(?:\.0)?\.clone\(\)', src, re.S
    ):
        kind = kinds.get(field)
        if kind is None:
            raise SystemExit(f"metrics.rs registers m.{field}, which the Metrics struct does not declare")
        base = f"somaflow_{name}"
        if kind == "counter":
            names.add(base + "_total")
        elif kind == "histogram":
            names.update(base + s for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(base)
    if len(names) < 30:
        raise SystemExit(f"found only {len(names)} metrics in metrics.rs; the parser needs updating")
    return names


def config_sections(root: Path) -> tuple[set[str], set[str]]:
    """Top-level keys of `Config` and the SOMAFLOW_* names that are not config keys."""
    src = (root / "src/config.rs").read_text()
    m = re.search(r"pub struct Config \{(.*?)\n\}", src, re.S)
    keys = set(re.findall(r"pub (\w+):", m.group(1))) if m else set()
    env = (root / "pipeline/src/config/env.rs").read_text()
    m = re.search(r"const NOT_CONFIG: &\[&str\] = &\[(.*?)\];", env, re.S)
    not_config = set(re.findall(r'"(\w+)"', m.group(1))) if m else {"CONFIG"}
    return keys, not_config


def check_somaflow_env(area: str, env: dict, sections: set[str], not_config: set[str]) -> None:
    for name in env:
        if not name.startswith("SOMAFLOW_"):
            continue
        rest = name[len("SOMAFLOW_"):]
        if rest in not_config:
            continue
        top = rest.split("__")[0].lower()
        if top not in sections:
            fail(area, f"{name}: `{top}` is no config section or key of somaflow (known: {', '.join(sorted(sections))})")
            return
    ok(area, "SOMAFLOW_* variables name real config keys")


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def doc_anchors(path: Path) -> set[str]:
    anchors = set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("#"):
            anchors.add(slug(line.lstrip("#")))
    return anchors


# ---------------------------------------------------------------------------
# PromQL
# ---------------------------------------------------------------------------

GRAFANA_PROM_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def promql_selectors(expr: str) -> list[str]:
    names: list[str] = []

    def pre(node):
        if isinstance(node, promql_parser.VectorSelector):
            names.append(node.name or "")
        return True

    promql_parser.walk(promql_parser.parse(expr), pre, None)
    return names


def check_promql(area: str, expr: str, exported: set[str]) -> bool:
    for var, value in GRAFANA_PROM_VARS.items():
        expr = expr.replace(var, value)
    if "$" in expr:
        fail(area, f"unresolved variable in PromQL: {expr}")
        return False
    try:
        names = promql_selectors(expr)
    except ValueError as e:
        fail(area, f"PromQL does not parse ({e}): {expr}")
        return False
    unknown = [n for n in names if n not in exported]
    if unknown:
        fail(area, f"names metrics somaflow does not export: {', '.join(sorted(set(unknown)))}")
        return False
    if not names:
        fail(area, f"PromQL selects no metric: {expr}")
        return False
    return True


# ---------------------------------------------------------------------------
# Compose
# ---------------------------------------------------------------------------

INTERP = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value, env, missing):
    if isinstance(value, dict):
        return {k: interpolate(v, env, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, missing) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        val = env.get(name)
        if op in (":-", "-"):
            if val is None or (op == ":-" and val == ""):
                return arg
            return val
        if op in (":?", "?"):
            if val is None or (op == ":?" and val == ""):
                missing.append(f"{name} (required: {arg})")
                return ""
            return val
        if val is None:
            missing.append(name)
            return ""
        return val

    return INTERP.sub(sub, value)


def check_compose(root: Path, sections: set[str], not_config: set[str], check_jsonschema: str) -> None:
    section("docker compose (infra/docker-compose.yml)")
    path = root / "infra/docker-compose.yml"
    base = path.parent
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        fail("compose", f"YAML: {e}")
        return
    missing: list[str] = []
    # Interpolate with an empty environment: the defaults must make a whole file.
    doc = interpolate(raw, {}, missing)
    if missing:
        fail("compose", f"variables without a default: {', '.join(missing)}")
    # Extension fields (x-…) stay: the specification allows them at the top.
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
        resolved = f.name
    try:
        r = subprocess.run([check_jsonschema, "--builtin-schema", "vendor.compose-spec", resolved],
                           capture_output=True, text=True)
    finally:
        os.unlink(resolved)
    if r.returncode == 0:
        ok("compose", "matches the Compose specification schema (after merge keys and interpolation)")
    else:
        fail("compose", "Compose specification schema:\n" + (r.stdout + r.stderr).strip().replace(resolved, str(path)))

    services = doc.get("services") or {}
    volumes = set((doc.get("volumes") or {}).keys())
    for name, svc in services.items():
        area = f"compose/{name}"
        for dep in (svc.get("depends_on") or {}):
            if dep not in services:
                fail(area, f"depends_on names unknown service {dep}")
        for v in svc.get("volumes") or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith((".", "/")):
                if not (base / src).exists():
                    fail(area, f"bind mount source {src} does not exist (relative to infra/)")
            elif src and src not in volumes:
                fail(area, f"volume {src} is not declared under volumes:")
        build = svc.get("build")
        if build:
            ctx = base / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = ctx / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            if not dockerfile.is_file():
                fail(area, f"build dockerfile {dockerfile} does not exist")
        if "healthcheck" not in svc and svc.get("restart") != "no":
            fail(area, "long-running service without a healthcheck")
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
        if any(k.startswith("SOMAFLOW_") for k in env):
            check_somaflow_env(area, env, sections, not_config)
        cmd = svc.get("command")
        if isinstance(cmd, list) and "--config" in cmd:
            cfg = cmd[cmd.index("--config") + 1]
            if not (root / cfg).is_file():
                fail(area, f"--config {cfg} is not a file of the repository")
            if env.get("SOMAFLOW_SERVER__LISTEN", "").startswith("0.0.0.0"):
                secret = env.get("SOMAFLOW_AUTH__SECRET", "")
                if len(secret) < 32:
                    fail(area, "listens on 0.0.0.0 without SOMAFLOW_AUTH__SECRET of ≥ 32 bytes (somaflow would fall back to 127.0.0.1)")
    for name in ("kafka", "clickhouse", "redis", "prometheus", "grafana", "somaflow"):
        if name not in services:
            fail("compose", f"no `{name}` service")
    ok("compose", f"{len(services)} services, references checked")

    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        r = subprocess.run([docker, "compose", "-f", str(path), "config", "-q"], capture_output=True, text=True)
        if r.returncode == 0:
            ok("compose", "`docker compose config` accepts it")
        else:
            fail("compose", f"`docker compose config`: {r.stderr.strip()}")
    else:
        warn("compose", "`docker compose` is not available here (no compose plugin): schema check only")


# ---------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------

STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
KEDA_SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"},
                           "labels": STRING_MAP, "annotations": STRING_MAP},
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object", "additionalProperties": False, "required": ["name"],
                    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                   "name": {"type": "string"}, "envSourceContainerName": {"type": "string"}},
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": {
                    "type": "object", "additionalProperties": False,
                    "required": ["failureThreshold", "replicas"],
                    "properties": {"failureThreshold": {"type": "integer"}, "replicas": {"type": "integer"},
                                   "behavior": {"type": "string"}},
                },
                "advanced": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object", "additionalProperties": False,
                            "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}},
                        },
                        "scalingModifiers": {"type": "object"},
                    },
                },
                "triggers": {
                    "type": "array", "minItems": 1,
                    "items": {
                        "type": "object", "additionalProperties": False, "required": ["type", "metadata"],
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                            "metadata": STRING_MAP,
                            "authenticationRef": {
                                "type": "object", "required": ["name"],
                                "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
    },
}
KAFKA_TRIGGER_REQUIRED = ["bootstrapServers", "consumerGroup", "lagThreshold"]


def k8s_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def check_k8s(root: Path, sections: set[str], not_config: set[str]) -> None:
    section("Kubernetes (infra/k8s)")
    kdir = root / "infra/k8s"
    objects: list[tuple[Path, dict]] = []
    for path in sorted(kdir.glob("*.y*ml")):
        try:
            for doc in k8s_docs(path):
                objects.append((path, doc))
        except yaml.YAMLError as e:
            fail(f"k8s/{path.name}", f"YAML: {e}")
    by_kind: dict[str, list[dict]] = {}
    for path, doc in objects:
        kind, api = doc.get("kind"), doc.get("apiVersion", "")
        name = (doc.get("metadata") or {}).get("name", "?")
        area = f"k8s/{path.name} {kind}/{name}"
        by_kind.setdefault(kind, []).append(doc)
        if kind == "Kustomization":
            for res in doc.get("resources") or []:
                if not (kdir / res).is_file():
                    fail(area, f"resource {res} does not exist")
            listed = set(doc.get("resources") or [])
            if any("secret" in r for r in listed):
                fail(area, "lists a Secret: real secret values must not live in the repository")
            ok(area, f"{len(listed)} resources exist")
            continue
        if api.startswith("keda.sh/"):
            errors = sorted(jsonschema.Draft202012Validator(KEDA_SCALED_OBJECT).iter_errors(doc), key=str)
            for e in errors:
                fail(area, f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}")
            for t in (doc.get("spec") or {}).get("triggers") or []:
                if t.get("type") == "kafka":
                    md = t.get("metadata") or {}
                    for key in KAFKA_TRIGGER_REQUIRED:
                        if key not in md:
                            fail(area, f"kafka trigger without metadata.{key}")
                    if not str(md.get("lagThreshold", "x")).isdigit():
                        fail(area, "kafka trigger lagThreshold must be a whole number (as a string)")
            behavior = (((doc.get("spec") or {}).get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get("behavior")
            if behavior:
                probe = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                         "metadata": {"name": "probe"},
                         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "x"},
                                  "maxReplicas": 1, "behavior": behavior}}
                try:
                    kubernetes_validate.validate(probe, K8S_VERSIONS[-1], strict=True)
                except kubernetes_validate.ValidationError as e:
                    fail(area, f"advanced.horizontalPodAutoscalerConfig.behavior: {e.message}")
            if not errors:
                ok(area, "matches KEDA's ScaledObject fields (keda.sh/v1alpha1), HPA behavior by the Kubernetes schema")
            continue
        good = True
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                good = False
                fail(area, f"Kubernetes {version}: {'.'.join(map(str, e.path))}: {e.message}")
            except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as e:
                good = False
                fail(area, f"Kubernetes {version}: no schema ({e})")
        if good:
            ok(area, f"valid (strict) for Kubernetes {' and '.join(K8S_VERSIONS)}")

    # References between the manifests.
    area = "k8s/references"
    sts = (by_kind.get("StatefulSet") or [None])[0]
    if not sts:
        fail(area, "no StatefulSet")
        return
    pod = sts["spec"]["template"]
    labels = pod["metadata"].get("labels") or {}
    c = pod["spec"]["containers"][0]

    def selects(sel: dict) -> bool:
        return bool(sel) and all(labels.get(k) == v for k, v in sel.items())

    services = by_kind.get("Service") or []
    headless = [s for s in services if s["spec"].get("clusterIP") == "None"]
    if not any(s["metadata"]["name"] == sts["spec"]["serviceName"] for s in headless):
        fail(area, f"StatefulSet serviceName {sts['spec']['serviceName']} is no headless Service")
    for s in services:
        if not selects(s["spec"].get("selector") or {}):
            fail(area, f"Service {s['metadata']['name']} selects no worker pod")
        for p in s["spec"]["ports"]:
            if p.get("targetPort") not in ("http", 8080):
                fail(area, f"Service {s['metadata']['name']} targets port {p.get('targetPort')}")
    scraped = [s for s in services if (s["metadata"].get("annotations") or {}).get("prometheus.io/scrape") == "true"]
    if not scraped:
        fail(area, "no Service carries prometheus.io/scrape annotations")
    elif (scraped[0]["metadata"]["annotations"].get("prometheus.io/path") != "/metrics"):
        fail(area, "prometheus.io/path must be /metrics")
    if not selects(sts["spec"]["selector"]["matchLabels"]):
        fail(area, "StatefulSet selector does not match its pod labels")
    for pdb in by_kind.get("PodDisruptionBudget") or []:
        if not selects(pdb["spec"]["selector"]["matchLabels"]):
            fail(area, "PodDisruptionBudget selects no worker pod")
    for kind in ("ScaledObject", "HorizontalPodAutoscaler"):
        for so in by_kind.get(kind) or []:
            ref = so["spec"]["scaleTargetRef"]
            if ref.get("kind") != "StatefulSet" or ref.get("name") != sts["metadata"]["name"]:
                fail(area, f"{kind} scales {ref.get('kind')}/{ref.get('name')}, not the workers")
    if (c.get("readinessProbe") or {}).get("httpGet", {}).get("path") != "/ready":
        fail(area, "readinessProbe is not GET /ready")
    if (c.get("livenessProbe") or {}).get("httpGet", {}).get("path") != "/health":
        fail(area, "livenessProbe is not GET /health")
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    if grace < 60:
        fail(area, f"terminationGracePeriodSeconds {grace} leaves no time for the final checkpoint")
    env = {e["name"]: e for e in c.get("env") or []}
    if env.get("SOMAFLOW_CLUSTER__WORKER_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
        fail(area, "SOMAFLOW_CLUSTER__WORKER_ID must be the (stable) pod name")
    if "SOMAFLOW_AUTH__SECRET" not in env:
        fail(area, "no SOMAFLOW_AUTH__SECRET: without auth somaflow listens on 127.0.0.1 only")
    check_somaflow_env(area, env, sections, not_config)
    secrets = {s["metadata"]["name"]: s for s in by_kind.get("Secret") or []}
    for e in env.values():
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            s = secrets.get(ref["name"])
            if not s:
                fail(area, f"env {e['name']} reads Secret {ref['name']}, which secret.example.yaml does not show")
            elif ref["key"] not in (s.get("stringData") or s.get("data") or {}):
                fail(area, f"Secret {ref['name']} has no key {ref['key']}")
    # The config the container runs.
    args = c.get("args") or []
    cfg_path = args[args.index("--config") + 1] if "--config" in args else None
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts") or []}
    cm_volume = next((v for v in pod["spec"].get("volumes") or [] if "configMap" in v), None)
    cms = {m["metadata"]["name"]: m for m in by_kind.get("ConfigMap") or []}
    if not cfg_path or not cm_volume:
        fail(area, "the container runs no --config from a ConfigMap volume")
        return
    mount = mounts.get(cm_volume["name"], "")
    key = cfg_path[len(mount):].lstrip("/") if cfg_path.startswith(mount + "/") else None
    cm = cms.get(cm_volume["configMap"]["name"])
    if not cm or not key or key not in (cm.get("data") or {}):
        fail(area, f"--config {cfg_path} is not a key of the mounted ConfigMap")
        return
    try:
        config = tomllib.loads(cm["data"][key])
    except tomllib.TOMLDecodeError as e:
        fail(area, f"ConfigMap {key} is not TOML: {e}")
        return
    unknown = set(config) - sections
    if unknown:
        fail(area, f"ConfigMap {key}: unknown top-level keys {', '.join(sorted(unknown))}")
    store = (config.get("checkpoint") or {}).get("store", "")
    lake = (config.get("lake") or {}).get("url", "")
    if not store.startswith("s3://") or not lake.startswith("s3://"):
        fail(area, "checkpoint.store and lake.url must be s3:// URLs shared by every worker")
    if not (config.get("server") or {}).get("listen", "").startswith("0.0.0.0:"):
        fail(area, "server.listen must be 0.0.0.0:… for probes and the Service")
    types = [n.get("type") for n in (config.get("pipeline") or {}).get("nodes") or []]
    if "kafka" not in types:
        fail(area, "the ConfigMap's pipeline has no kafka source: the pods would not be cluster workers")
    ok(area, "selectors, Secrets, probes, grace period, and the ConfigMap's cluster.toml (S3 store and lake) agree")


# ---------------------------------------------------------------------------
# Grafana
# ---------------------------------------------------------------------------

def walk_panels(panels):
    for p in panels or []:
        yield p
        yield from walk_panels(p.get("panels"))


def expand_ch_macros(sql: str) -> str:
    now = int(dt.datetime.now(dt.timezone.utc).timestamp())
    frm = now - 7 * 86400
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 lambda m: f"{m.group(1)} >= toDateTime({frm}) AND {m.group(1)} <= toDateTime({now})", sql)
    sql = sql.replace("$__interval_s", "3600")
    sql = sql.replace("$__fromTime", f"toDateTime({frm})").replace("$__toTime", f"toDateTime({now})")
    sql = re.sub(r"\$\{(tenant|pool):singlequote\}", lambda m: {"tenant": "'tenant-a','tenant-b'", "pool": "'coding','general'"}[m.group(1)], sql)
    sql = sql.replace("${currency}", "USD")
    return sql


CH_FORBIDDEN = [
    (r"\bDateTime64\b", "DateTime64 (ClickHouse 18.16 has none)"),
    (r"\bMap\s*\(", "Map (ClickHouse 18.16 has none)"),
    (r"\btoStartOfInterval\b", "toStartOfInterval (not in ClickHouse 18.16)"),
    (r"\$__timeInterval", "$__timeInterval (expands to toStartOfInterval, not in ClickHouse 18.16)"),
    (r"\$__(?:timeFilter|fromTime|toTime)_ms", "millisecond macros (expand to DateTime64)"),
    (r"\bLowCardinality\b", "LowCardinality (needs a setting on 18.16)"),
]


def ch_tables(root: Path) -> set[str]:
    names = set()
    for f in (root / "sql/clickhouse").glob("*.sql"):
        names.update(re.findall(r"CREATE (?:MATERIALIZED )?(?:TABLE|VIEW) (?:IF NOT EXISTS )?(\w+)", f.read_text()))
    return names


def check_grafana(root: Path, exported: set[str], promql_out: list[str]) -> list[tuple[str, str]]:
    section("Grafana (infra/grafana)")
    gdir = root / "infra/grafana"
    ch_queries: list[tuple[str, str]] = []
    try:
        prov = yaml.safe_load((gdir / "provisioning/datasources/datasources.yml").read_text())
        dss = {d["uid"]: d["type"] for d in prov["datasources"]}
        ok("grafana/datasources.yml", f"datasources {', '.join(f'{u} ({t})' for u, t in dss.items())}")
    except Exception as e:  # noqa: BLE001 — any shape error is a failure to report
        fail("grafana/datasources.yml", f"unreadable: {e}")
        return ch_queries
    try:
        dprov = yaml.safe_load((gdir / "provisioning/dashboards/dashboards.yml").read_text())
        if not all(p.get("type") == "file" and p.get("options", {}).get("path") for p in dprov["providers"]):
            fail("grafana/dashboards.yml", "every provider needs type file and options.path")
        else:
            ok("grafana/dashboards.yml", "file provider(s) " + ", ".join(p["options"]["path"] for p in dprov["providers"]))
    except Exception as e:  # noqa: BLE001
        fail("grafana/dashboards.yml", f"unreadable: {e}")
    tables = ch_tables(root)
    uids = set()
    files = sorted(gdir.glob("*.json"))
    if not files:
        fail("grafana", "no dashboards")
    for f in files:
        area = f"grafana/{f.name}"
        try:
            d = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            fail(area, f"JSON: {e}")
            continue
        problems = 0

        def bad(msg):
            nonlocal problems
            problems += 1
            fail(area, msg)

        if d.get("uid") in uids:
            bad(f"uid {d.get('uid')} used twice")
        uids.add(d.get("uid"))
        if not d.get("title") or not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
            bad("needs a title and schemaVersion ≥ 36")
        if "${DS" in f.read_text():
            bad("uses ${DS_…} inputs; refer to datasources by their provisioned uid")
        ids = set()
        n_panels = n_prom = n_ch = 0

        def check_ds(where, ds, target=False):
            if not isinstance(ds, dict) or ds.get("uid") not in dss:
                bad(f"{where}: datasource {ds!r} is not a provisioned uid ({', '.join(dss)})")
                return None
            if ds.get("type") and ds["type"] != dss[ds["uid"]]:
                bad(f"{where}: datasource type {ds['type']} but uid {ds['uid']} is {dss[ds['uid']]}")
            return dss[ds["uid"]]

        for p in walk_panels(d.get("panels")):
            if p.get("id") in ids:
                bad(f"panel id {p.get('id')} used twice")
            ids.add(p.get("id"))
            if "gridPos" not in p:
                bad(f"panel {p.get('title')!r} has no gridPos")
            if p.get("type") == "row":
                continue
            n_panels += 1
            where = f"panel {p.get('title')!r}"
            pds = check_ds(where, p.get("datasource"))
            if not p.get("targets"):
                bad(f"{where}: no queries")
            for t in p.get("targets") or []:
                tds = check_ds(f"{where} target {t.get('refId')}", t.get("datasource", p.get("datasource")))
                kind = tds or pds
                if kind == "prometheus":
                    n_prom += 1
                    expr = t.get("expr", "")
                    if check_promql(f"{area} {where}", expr, exported):
                        promql_out.append(expr)
                    else:
                        problems += 1
                elif kind == "grafana-clickhouse-datasource":
                    n_ch += 1
                    ch_queries.append((f"{area} {where}", t.get("rawSql", "")))
                    if t.get("editorType") != "sql" or not t.get("rawSql"):
                        bad(f"{where}: ClickHouse target needs editorType sql and rawSql")
        for v in (d.get("templating") or {}).get("list") or []:
            if "datasource" in v:
                kind = check_ds(f"variable {v.get('name')}", v["datasource"])
                if kind == "grafana-clickhouse-datasource":
                    ch_queries.append((f"{area} variable {v.get('name')}", v.get("query", "")))
                elif kind == "prometheus":
                    bad(f"variable {v.get('name')}: Prometheus variables would put $vars into PromQL")
        for where, q in ch_queries:
            if not where.startswith(area):
                continue
            for pattern, why in CH_FORBIDDEN:
                if re.search(pattern, q):
                    bad(f"{where}: uses {why}")
            if re.search(r"\busage_1m\b(?!\s+FINAL\b)", q):
                bad(f"{where}: reads usage_1m without FINAL (replayed rows would count twice)")
            for tname in re.findall(r"\bFROM\s+(\w+)", q):
                if tname not in tables:
                    bad(f"{where}: table {tname} is not created by sql/clickhouse/")
        if problems == 0:
            ok(area, f"{n_panels} panels: {n_prom} PromQL and {n_ch} ClickHouse queries, datasources provisioned")
    return ch_queries


# ---------------------------------------------------------------------------
# ClickHouse, live
# ---------------------------------------------------------------------------

class ClickHouse:
    def __init__(self, url: str, database: str | None = None):
        self.url, self.database = url.rstrip("/"), database

    def query(self, sql: str) -> str:
        params = {"database": self.database} if self.database else {}
        req = urllib.request.Request(f"{self.url}/?{urllib.parse.urlencode(params)}", data=sql.encode(), method="POST")
        user = os.environ.get("CLICKHOUSE_USER")
        if user:
            req.add_header("X-ClickHouse-User", user)
            req.add_header("X-ClickHouse-Key", os.environ.get("CLICKHOUSE_PASSWORD", ""))
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(e.read().decode(errors="replace").strip()) from None


def ddl_statements(text: str) -> list[str]:
    text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def check_clickhouse_live(root: Path, url: str, queries: list[tuple[str, str]]) -> None:
    section(f"ClickHouse queries against {url}")
    server = ClickHouse(url)
    try:
        version = server.query("SELECT version()").strip()
    except Exception as e:  # noqa: BLE001
        fail("clickhouse", f"{url} does not answer: {e}")
        return
    major, minor = (int(x) for x in version.split(".")[:2])
    variant = root / "sql/clickhouse" / ("current" if (major, minor) >= (22, 8) else "")
    db = "somaflow_infra_check"
    server.query(f"DROP DATABASE IF EXISTS {db}")
    server.query(f"CREATE DATABASE {db}")
    ch = ClickHouse(url, db)
    try:
        for f in sorted(variant.glob("[0-9]*.sql")):
            for stmt in ddl_statements(f.read_text()):
                ch.query(stmt)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        ts = lambda minutes: (now - dt.timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
        ch.query(
            "INSERT INTO usage_1m (tenant_id, window_start, model, provider, capsule_id, input_tokens, output_tokens, "
            "cached_input_tokens, reasoning_tokens, cost_usd, requests, capsule_runs, workflow_steps, row_id) VALUES "
            f"('tenant-a', '{ts(60)}', 'gpt-4o', 'openai', '', 1000, 200, 100, 0, 0.012, 3, 0, 0, 'r1'), "
            f"('tenant-a', '{ts(60)}', 'gpt-4o', 'openai', '', 1000, 200, 100, 0, 0.012, 3, 0, 0, 'r1'), "
            f"('tenant-b', '{ts(30)}', 'claude', 'anthropic', 'cap-1', 500, 50, 0, 10, 0.5, 1, 1, 2, 'r2')")
        ch.query(
            "INSERT INTO workflow_executions (event_id, tenant_id, source, event_time, ingest_time, source_topic, "
            "source_partition, source_offset, workflow_id, run_id, step_id, step_type, status, agent_pool, attempt, "
            "duration_ms, quality_score) VALUES "
            f"('e1', 'tenant-a', 's', '{ts(50)}', '{ts(50)}', 't', 0, 1, 'wf', 'run-1', 'step-0', 'plan', 'succeeded', 'coding', 1, 1200, 0.9), "
            f"('e2', 'tenant-a', 's', '{ts(40)}', '{ts(40)}', 't', 0, 2, 'wf', 'run-1', 'step-1', 'code', 'failed', 'coding', 1, 800, NULL), "
            f"('e3', 'tenant-b', 's', '{ts(20)}', '{ts(20)}', 't', 0, 3, 'wf', 'run-2', 'step-0', 'plan', 'queued', 'general', 1, 0, NULL)")
        ch.query(
            "INSERT INTO marketplace_transactions (event_id, tenant_id, source, event_time, ingest_time, source_topic, "
            "source_partition, source_offset, capsule_id, author_id, tx_type, amount_cents, currency) VALUES "
            f"('m1', 'tenant-a', 's', '{ts(30)}', '{ts(30)}', 't', 0, 1, 'cap-1', 'auth-1', 'purchase', 1999, 'USD'), "
            f"('m2', 'tenant-b', 's', '{ts(20)}', '{ts(20)}', 't', 0, 2, 'cap-1', 'auth-1', 'refund', 1999, 'USD')")
        ch.query(
            "INSERT INTO budget_events (event_id, tenant_id, month, level, threshold_usd, budget_usd, spend_usd, "
            f"event_time, detected_at) VALUES ('b1', 'tenant-a', '{now:%Y-%m}', 'hard', 100, 100, 100.5, '{ts(10)}', '{ts(10)}')")
        ran = 0
        for where, sql in queries:
            expanded = expand_ch_macros(sql)
            if "$" in expanded:
                fail(where, f"unexpanded macro or variable: {expanded}")
                continue
            try:
                out = json.loads(ch.query(expanded + "\nFORMAT JSON"))
                ran += 1
                if not out.get("data"):
                    warn(where, "returned no rows on the sample data")
            except Exception as e:  # noqa: BLE001
                fail(where, f"ClickHouse {version}: {str(e)[:400]}")
        ok("clickhouse", f"{ran}/{len(queries)} dashboard queries ran on ClickHouse {version} ({'current/' if variant.name == 'current' else 'base'} DDL, sample rows)")
    finally:
        server.query(f"DROP DATABASE IF EXISTS {db}")


# ---------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------

COMPARISONS = {">", "<", ">=", "<=", "==", "!="}


def check_prometheus(root: Path, exported: set[str], promtool: str | None, dashboard_promql: list[str]) -> None:
    section("Prometheus (infra/prometheus)")
    pdir = root / "infra/prometheus"
    docs = root / "docs/operations.md"
    anchors = doc_anchors(docs) if docs.is_file() else set()
    if not docs.is_file():
        fail("docs", "docs/operations.md is missing (the alerts' runbooks)")
    else:
        broken = [a for a in re.findall(r"\]\(#([^)]+)\)", docs.read_text()) if a not in anchors]
        if broken:
            fail("docs/operations.md", f"links to missing sections: {', '.join(broken)}")
        else:
            ok("docs/operations.md", "every #link names a section")
    try:
        cfg = yaml.safe_load((pdir / "prometheus.yml").read_text())
        for rf in cfg.get("rule_files") or []:
            if not (pdir / rf).is_file():
                fail("prometheus.yml", f"rule file {rf} does not exist")
        if not cfg.get("scrape_configs"):
            fail("prometheus.yml", "no scrape_configs")
        ok("prometheus.yml", "YAML with scrape configs and existing rule files")
    except Exception as e:  # noqa: BLE001
        fail("prometheus.yml", f"unreadable: {e}")
    try:
        rules = yaml.safe_load((pdir / "alerts.yml").read_text())
    except Exception as e:  # noqa: BLE001
        fail("alerts.yml", f"unreadable: {e}")
        return
    names = set()
    count = 0
    for g in rules.get("groups") or []:
        for r in g.get("rules") or []:
            name = r.get("alert") or r.get("record")
            area = f"alerts.yml {name}"
            count += 1
            if name in names:
                fail(area, "name used twice")
            names.add(name)
            if "alert" not in r:
                continue
            ann = r.get("annotations") or {}
            for key in ("summary", "description", "runbook"):
                if not ann.get(key):
                    fail(area, f"no {key} annotation")
            if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                fail(area, "severity label must be critical, warning or info")
            rb = ann.get("runbook", "")
            if not rb.startswith("docs/operations.md#") or rb.split("#", 1)[1] not in anchors:
                fail(area, f"runbook {rb!r} is no heading of docs/operations.md")
            expr = r.get("expr", "")
            if not check_promql(area, expr, exported):
                continue
            top = promql_parser.parse(expr)
            if not (isinstance(top, promql_parser.BinaryExpr) and str(top.op) in COMPARISONS
                    and isinstance(top.rhs, promql_parser.NumberLiteral)
                    and not (top.modifier and top.modifier.return_bool)):
                fail(area, "expression must be `<measure> <comparison> <number>` at its top level")
    if not any(f.startswith("alerts.yml") for f in FAILURES):
        ok("alerts.yml", f"{count} rules: annotations, runbook anchors, `<measure> <op> <number>`, metric names")

    if not promtool:
        warn("promtool", "not installed (apt-get install prometheus): skipped check config / check rules / test rules")
        return
    version = subprocess.run([promtool, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    for args, what in (
        (["check", "config", str(pdir / "prometheus.yml")], "check config prometheus.yml"),
        (["check", "rules", str(pdir / "alerts.yml")], "check rules alerts.yml"),
        (["test", "rules", str(pdir / "alerts.test.yml")], "test rules alerts.test.yml"),
    ):
        r = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=pdir)
        if r.returncode == 0:
            ok("promtool", what)
        else:
            fail("promtool", f"{what}:\n{(r.stdout + r.stderr).strip()}")
    # The dashboards' PromQL through Prometheus' own parser, as recording rules.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dashboards.rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [
            {"record": f"somaflow_dashboard_check:expr{i}", "expr": e} for i, e in enumerate(dashboard_promql)]}]}))
        r = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
        if r.returncode == 0:
            ok("promtool", f"{len(dashboard_promql)} dashboard PromQL expressions parse ({version})")
        else:
            fail("promtool", f"dashboard PromQL:\n{(r.stdout + r.stderr).strip()}")


# ---------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--check-jsonschema", required=True)
    ap.add_argument("--promtool")
    ap.add_argument("--clickhouse-url")
    a = ap.parse_args()
    root = a.root.resolve()

    section("YAML files under infra/")
    for path in sorted((root / "infra").rglob("*.y*ml")):
        try:
            list(yaml.safe_load_all(path.read_text()))
            ok("yaml", str(path.relative_to(root)))
        except yaml.YAMLError as e:
            fail("yaml", f"{path.relative_to(root)}: {e}")

    exported = exported_metrics(root)
    sections, not_config = config_sections(root)
    print(f"\n(somaflow exports {len(exported)} series names per pipeline/src/metrics.rs; "
          f"config sections: {', '.join(sorted(sections))})")
    check_compose(root, sections, not_config, a.check_jsonschema)
    check_k8s(root, sections, not_config)
    dashboard_promql: list[str] = []
    ch_queries = check_grafana(root, exported, dashboard_promql)
    check_prometheus(root, exported, a.promtool, dashboard_promql)
    if a.clickhouse_url:
        check_clickhouse_live(root, a.clickhouse_url, ch_queries)
    else:
        print("\n(ClickHouse queries checked statically only; --clickhouse runs them on a real server)")

    print()
    if FAILURES:
        print(f"validate-infra: {len(FAILURES)} FAILED, {PASSED} passed")
        for f in FAILURES:
            print(f"  - {f.splitlines()[0]}")
        return 1
    print(f"validate-infra: all {PASSED} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
