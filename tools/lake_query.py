#!/usr/bin/env python3
"""Runs the stack's saved Athena queries, as template.yaml holds them, over an archive, in
DuckDB (offline): the data lake's queries tested without AWS.

    python3 tools/lake_query.py --layout flat|dated (--dir DIR | --s3 s3://bucket/prefix
        [--endpoint URL]) [--param NAME=VALUE]... [--only NAME]... [--template template.yaml]
    python3 tools/lake_query.py --columns [--template template.yaml]

It prints one JSON object: for each query (by its Name), its columns, rows, seconds, and
the files and bytes it scans. `--param outputs-of-one-wes-run=ID` gives a query's `?`.
`--columns` prints the table's columns and the JSON key each is read from.

The shim between Athena (Trino) and DuckDB, and between the Glue table and the objects:

- The table is a view over `read_json` of the objects Athena would read: every object under
  the table's location except those under a folder or with a name that starts with `_` or
  `.` (which Hive and Athena treat as hidden: reconcile's ledger is `_reconcile/`); with the
  dated layout, only objects under `year=*/month=*/day=*/` (the projection's template),
  whose partition values (strings) come from the path, as partition projection gives them.
- Columns as the OpenX SerDe reads them: each from its JSON key (the `mapping.*` property,
  else the key whose lower case is the column's name, which the SerDe matches without
  regard to case); a `string` column over an object gives its JSON text, `map<string,string>`
  a map, `array<string>` a list. A malformed object (the Python stack's zip) reads as rows
  of NULLs, as with `ignore.malformed.json`.
- Trino functions DuckDB lacks are macros: `from_iso8601_timestamp(s)` is `CAST(s AS
  TIMESTAMPTZ)`. The session's time zone is UTC, as Athena's. Everything else the saved
  queries use (`date_diff`, `concat`, `current_timestamp - INTERVAL 'n' DAY`, `AT TIME ZONE`,
  window functions, `?`) is the same in both.
- Bytes scanned: the size of the objects whose partition values pass the query's partition
  filter (the `Days` expression the template adds for the dated layout), which is what
  Athena reads and bills; all objects with the flat layout.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TYPES = {"string": "VARCHAR", "map<string,string>": "MAP(VARCHAR, VARCHAR)", "array<string>": "VARCHAR[]"}


def load_template(path):
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(Path(path).read_text())


def resolve(value, layout, names):
    """A template value with Fn::If (on the Dated and QueueDelivery conditions), Ref,
    Fn::GetAtt and Fn::Sub resolved."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Fn::If":
            cond, yes, no = arg
            # The layout asked for; the template's default delivery (queue).
            known = {"Dated": layout == "dated", "QueueDelivery": True}
            if cond not in known:
                raise SystemExit(f"a value resolved here depends on condition {cond}")
            return resolve(yes if known[cond] else no, layout, names)
        if fn == "Ref":
            return names[arg]
        if fn == "Fn::GetAtt":
            return names[".".join(arg)]
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            local = {k: resolve(v, layout, names) for k, v in variables.items()}

            def sub(m):
                name = m.group(1)
                if name in local:
                    return local[name]
                if name in names:
                    return names[name]
                raise SystemExit(f"${{{name}}} in the template is neither a variable nor a known name")

            return re.sub(r"\$\{([A-Za-z0-9_:.]+)\}", sub, text)
    return value


def table_and_queries(template, layout):
    resources = template["Resources"]
    params = template["Parameters"]
    database = params["LakeDatabaseName"]["Default"]
    names = {"LakeDatabase": database}
    table = resources["LakeTable"]["Properties"]["TableInput"]
    queries, days = {}, {}
    for res in resources.values():
        if res["Type"] != "AWS::Athena::NamedQuery":
            continue
        props = res["Properties"]
        queries[props["Name"]] = resolve(props["QueryString"], layout, names)
        sub = props["QueryString"]["Fn::Sub"]
        filt = resolve(sub[1].get("Days", ""), layout, names) if isinstance(sub, list) else ""
        days[props["Name"]] = filt.strip()
    return database, table, queries, days


def known_keys():
    """The record keys the bundled guest writes, from the fixtures' expected records."""
    keys = set()
    for f in sorted((ROOT / "fixtures").glob("*/expected.json")):
        record = json.loads(f.read_text()).get("record")
        if isinstance(record, dict):
            keys.update(record)
    keys.add("enrichment_errors")
    return keys


def columns(table):
    """(column, type, JSON key) for every column of the table, as the SerDe reads them."""
    serde = table["StorageDescriptor"]["SerdeInfo"].get("Parameters", {})
    by_lower = {}
    for k in known_keys():
        by_lower.setdefault(k.lower(), k)
    out = []
    for c in table["StorageDescriptor"]["Columns"]:
        name = c["Name"]
        key = serde.get(f"mapping.{name}") or by_lower.get(name, name)
        out.append((name, c["Type"], key))
    return out


def hidden(rel):
    return any(part.startswith(("_", ".")) for part in rel.parts)


DATED = re.compile(r"^year=([^/]+)/month=([^/]+)/day=([^/]+)/[^/]+$")


def objects(root, layout):
    """(path, size, partition values) of the objects Athena would read under `root`."""
    out = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            rel = path.relative_to(root)
            if hidden(rel):
                continue
            if layout == "dated":
                m = DATED.match(rel.as_posix())
                if not m:
                    continue
                out.append((path, path.stat().st_size, m.groups()))
            else:
                out.append((path, path.stat().st_size, None))
    return out


def download(uri, endpoint, into):
    import boto3

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
    for page in pages:
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix) + 1 :] if prefix else obj["Key"]
            target = Path(into) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))


def lit(s):
    return "'" + str(s).replace("'", "''") + "'"


def connect(database, table, files, layout):
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ)")
    cols = columns(table)
    json_cols = {}
    for name, kind, key in cols:
        json_cols[key] = "JSON" if kind == "string" and name in ("log_urls", "output_mapping") else TYPES[kind]
    select = []
    for name, kind, key in cols:
        ref = '"' + key.replace('"', '""') + '"'
        select.append(f"CAST({ref} AS VARCHAR) AS {name}" if json_cols[key] == "JSON" else f"{ref} AS {name}")
    con.execute(f'CREATE SCHEMA "{database}"')
    if not files:
        fields = ", ".join(f"CAST(NULL AS {TYPES[k]}) AS {n}" for n, k, _ in cols)
        parts = ", CAST(NULL AS VARCHAR) AS year, CAST(NULL AS VARCHAR) AS month, CAST(NULL AS VARCHAR) AS day" if layout == "dated" else ""
        con.execute(f'CREATE VIEW "{database}".omics_run_events AS SELECT {fields}{parts} WHERE false')
        return con
    flist = "[" + ", ".join(lit(p) for p, _, _ in files) + "]"
    spec = "{" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in json_cols.items()) + "}"
    hive = ""
    if layout == "dated":
        select += ["year", "month", "day"]
        hive = ", hive_partitioning = true, hive_types = {'year': 'VARCHAR', 'month': 'VARCHAR', 'day': 'VARCHAR'}"
    con.execute(
        f'CREATE VIEW "{database}".omics_run_events AS SELECT {", ".join(select)} '
        f"FROM read_json({flist}, columns = {spec}, format = 'newline_delimited', ignore_errors = true{hive})"
    )
    return con


def scanned(con, files, filt):
    """Files and bytes a query reads: those whose partitions pass `filt` (dated), else all."""
    if not files:
        return 0, 0
    if not filt or files[0][2] is None:
        return len(files), sum(size for _, size, _ in files)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    if "listing" not in tables:
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            f.write("year,month,day,size\n")
            f.writelines(f"{y},{m},{d},{size}\n" for _, size, (y, m, d) in files)
        con.execute(
            "CREATE TEMP TABLE listing AS SELECT * FROM read_csv(?, header = true, "
            "columns = {'year': 'VARCHAR', 'month': 'VARCHAR', 'day': 'VARCHAR', 'size': 'BIGINT'})",
            [f.name],
        )
        os.unlink(f.name)
    cond = filt.removeprefix("AND").strip()
    n, b = con.execute(f"SELECT count(*), coalesce(sum(size), 0) FROM listing WHERE {cond}").fetchone()
    return n, b


def plain(v):
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    if isinstance(v, float):
        return v
    return str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--template", default=str(ROOT / "template.yaml"))
    ap.add_argument("--layout", choices=["flat", "dated"], default="flat")
    ap.add_argument("--dir")
    ap.add_argument("--s3")
    ap.add_argument("--endpoint")
    ap.add_argument("--param", action="append", default=[])
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--columns", action="store_true")
    ap.add_argument("--print-sql", action="store_true")
    args = ap.parse_args()
    template = load_template(args.template)
    database, table, queries, days = table_and_queries(template, args.layout)
    if args.columns:
        print(json.dumps([{"name": n, "type": t, "key": k} for n, t, k in columns(table)]))
        return
    if args.print_sql:
        for name, sql in queries.items():
            print(f"-- {name}\n{sql}")
        return
    params = {}
    for p in args.param:
        name, _, value = p.partition("=")
        params.setdefault(name, []).append(value)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir
        if args.s3:
            root = tmp
            download(args.s3, args.endpoint, tmp)
        if not root:
            raise SystemExit("give --dir or --s3")
        files = objects(Path(root), args.layout)
        con = connect(database, table, files, args.layout)
        out = {}
        for name, sql in queries.items():
            if args.only and name not in args.only:
                continue
            values = params.get(name, [])
            if sql.count("?") != len(values):
                raise SystemExit(f"{name} takes {sql.count('?')} parameter(s): --param {name}=VALUE")
            started = time.perf_counter()
            cur = con.execute(sql, values) if values else con.execute(sql)
            rows = cur.fetchall()
            seconds = time.perf_counter() - started
            names = [d[0] for d in cur.description]
            n, b = scanned(con, files, days[name])
            out[name] = {
                "columns": names,
                "rows": [plain(list(r)) for r in rows],
                "seconds": round(seconds, 4),
                "files": n,
                "bytes": b,
                "objects": len(files),
            }
        json.dump(out, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
