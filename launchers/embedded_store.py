"""The embedded default store: a maggma ``Store`` on one SQLite file, with real indexes.

maggma's ``MontyStore`` (montydb on SQLite) has no indexes: every jobflow upsert and every query read
the whole collection, so a campaign's orchestration grew with the square of its size (issue 14).
``SQLiteStore`` keeps each collection as a table of JSON documents (one ``TEXT`` column) in one SQLite
file and translates Mongo queries into SQL on ``json_extract``, so an expression index on a field serves
lookups, upserts and sorts on it: a lookup costs the same at 10 and at 10,000 documents.

* Several processes can read and write one file: WAL journal mode, a busy timeout, and every write
  (a batch of upserts, a delete) in one ``BEGIN IMMEDIATE`` transaction.
* ``ensure_index(key)`` creates an index on ``json_extract(doc, '$.<key>')`` (a list of keys: a compound
  index); ``update(docs, key)`` upserts through a unique index on its key fields (created on first use).
* Translated to SQL: equality (dotted paths too), ``$eq``, ``$ne``, ``$in``, ``$nin``, ``$exists``,
  ``$gt``/``$gte``/``$lt``/``$lte`` (within one type, as MongoDB compares), ``$and``, ``$or``, ``$nor``,
  and sort / skip / limit. Any other operator (``$regex``, ``$elemMatch``, ``$size``, ...) is applied in
  Python with mongomock's matcher after SQL has narrowed the rows with the parts it could translate.
* Known difference from MongoDB: SQL does not look inside arrays, so ``{"tags": "x"}`` does not match
  ``tags: ["x"]`` and ``"a.b"`` does not reach into a list of sub-documents. Neither jobflow nor
  coatflow queries array fields; use ``$elemMatch`` (Python-matched) if you need it.
* Documents are stored as maggma's ``MongoStore`` sanitises them (``jsanitize``), then as JSON:
  datetimes become ISO strings (jobflow already writes ``completed_at`` as one), ``NaN`` and infinities
  are kept as MongoDB Extended JSON ``{"$numberDouble": "NaN"}`` (SQLite's JSON rejects bare NaN) and
  read back as floats, bytes as ``{"$binary": ...}``. No ``_id`` is added.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from maggma.core import Sort, Store, StoreError
from mongomock.filtering import filter_applies
from monty.json import jsanitize
from pydash import get, has, set_

#: SQLite's ``->`` operator (3.38+) extracts a field as JSON text: projections read only the fields asked for.
_HAS_ARROW = sqlite3.sqlite_version_info >= (3, 38, 0)
_CHUNK = 500  # bound parameters per IN (...) list
_ABANDONED: list[sqlite3.Connection] = []  # connections inherited over fork: never closed in the child


def open_database(path: str | Path, timeout: float = 60.0) -> sqlite3.Connection:
    """A connection to the SQLite file ``path`` (its folder is created), in WAL mode with a busy timeout.

    Autocommit (``isolation_level=None``): callers open write transactions with :func:`write_transaction`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + timeout
    while True:  # two processes opening a fresh file at once: switching to WAL may report "locked" once
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable against a killed process
            return conn
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(0.05)


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): one writer at a time, others wait."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# -- documents <-> JSON text ---------------------------------------------------------------------------------


def _default(obj: Any) -> Any:
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray)):
        return {"$binary": {"base64": base64.b64encode(bytes(obj)).decode(), "subType": "00"}}
    if isinstance(obj, Enum):
        return obj.value
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return str(obj)  # ObjectId and anything else, as jsanitize(strict=False) does


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"$numberDouble": "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")}
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps(doc: Any) -> str:
    """Compact JSON that SQLite's JSON functions accept (non-finite floats as Extended JSON)."""
    try:
        return json.dumps(doc, default=_default, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return json.dumps(_finite(doc), default=_default, allow_nan=False, separators=(",", ":"),
                          ensure_ascii=False)


def _restore(obj: Any) -> Any:
    if isinstance(obj, dict):
        if len(obj) == 1 and "$numberDouble" in obj:
            return float(obj["$numberDouble"])
        if len(obj) == 1 and isinstance(obj.get("$binary"), dict):
            return base64.b64decode(obj["$binary"]["base64"])
        return {k: _restore(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v) for v in obj]
    return obj


def loads(text: str | None) -> Any:
    """Inverse of :func:`dumps`."""
    if text is None:
        return None
    obj = json.loads(text)
    if '"$numberDouble"' in text or '"$binary"' in text:
        obj = _restore(obj)
    return obj


def _sanitize_query(obj: Any) -> Any:
    """Query values in the stored form (datetimes as ISO strings); compiled regexes stay."""
    if isinstance(obj, dict):
        return {k: _sanitize_query(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitize_query(v) for v in obj]
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Enum):
        return obj.value
    return obj


# -- Mongo criteria -> SQL -----------------------------------------------------------------------------------

_SAFE = re.compile(r"^[^\"'.$\[\]]+$")


def json_path(field: str) -> str | None:
    """``"metadata.coatflow.key"`` -> ``$."metadata"."coatflow"."key"``; None where SQL cannot follow it
    (an array position like ``a.0``, an operator, a quote)."""
    parts = field.split(".")
    if not all(_SAFE.match(p) and not p.isdigit() for p in parts):
        return None
    return "$" + "".join(f'."{p}"' for p in parts)


def field_expr(field: str) -> str | None:
    """The SQL expression of a field, identical in indexes and queries (so SQLite matches them)."""
    path = json_path(field)
    return None if path is None else f"json_extract(doc, '{path}')"


def _type_expr(field: str) -> str:
    return f"json_type(doc, '{json_path(field)}')"


_NUMERIC = "('integer','real')"
_RANGE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class _Sql:
    """SQL WHERE text plus its parameters; ``exact`` is False when a part was left to Python."""

    def __init__(self):
        self.params: list = []
        self.exact = True

    def inexact(self) -> None:
        self.exact = False

    # Each method returns SQL text, or None for "no condition in SQL" (then Python applies the criteria).

    def eq(self, field: str, value: Any) -> str | None:
        x = field_expr(field)
        if x is None:
            return self.inexact()
        if value is None:  # missing or null, as in MongoDB (json_type: no copy of a sub-document is made)
            return f"IFNULL({_type_expr(field)}, 'null') = 'null'"
        if isinstance(value, bool):
            self.params.append(int(value))
            return f"({x} = ? AND {_type_expr(field)} = '{'true' if value else 'false'}')"
        if _is_number(value):
            self.params.append(value)
            return f"({x} = ? AND {_type_expr(field)} IN {_NUMERIC})"
        if isinstance(value, str):
            self.params.append(value)
            return f"({x} = ? AND {_type_expr(field)} = 'text')"
        return self.inexact()  # sub-documents, arrays, regexes, NaN

    def is_in(self, field: str, values: Iterable) -> str | None:
        x = field_expr(field)
        values = list(values) if isinstance(values, (list, tuple, set)) else None
        if x is None or values is None:
            return self.inexact()
        strings = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if _is_number(v)]
        rest = [v for v in values if not isinstance(v, str) and not _is_number(v)]
        terms, params = [], []
        if strings:
            params.extend(strings)
            terms.append(f"({x} IN ({','.join('?' * len(strings))}) AND {_type_expr(field)} = 'text')")
        if numbers:
            params.extend(numbers)
            terms.append(f"({x} IN ({','.join('?' * len(numbers))}) AND {_type_expr(field)} IN {_NUMERIC})")
        for v in rest:
            sub = _Sql()
            term = sub.eq(field, v)
            if term is None:
                return self.inexact()
            params.extend(sub.params)
            terms.append(term)
        if not terms:
            return "0"
        self.params.extend(params)
        return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"

    def compare(self, field: str, op: str, value: Any) -> str | None:
        x = field_expr(field)
        if x is None:
            return self.inexact()
        if _is_number(value):
            kind = f"IN {_NUMERIC}"
        elif isinstance(value, str):
            kind = "= 'text'"
        else:
            return self.inexact()  # MongoDB compares within a type; leave the rest to Python
        self.params.append(value)
        return f"({x} {_RANGE[op]} ? AND {_type_expr(field)} {kind})"

    def negate(self, build) -> str | None:
        """NOT of an exact sub-condition (a narrowed one cannot be negated)."""
        sub = _Sql()
        term = build(sub)
        if term is None or not sub.exact:
            return self.inexact()
        self.params.extend(sub.params)
        return f"NOT IFNULL({term}, 0)"

    def field(self, field: str, cond: Any) -> str | None:
        if isinstance(cond, dict) and cond and all(isinstance(k, str) and k.startswith("$") for k in cond):
            terms = []
            for op, value in cond.items():
                if op == "$eq":
                    term = self.eq(field, value)
                elif op == "$ne":
                    term = self.negate(lambda s, v=value: s.eq(field, v))
                elif op == "$in":
                    term = self.is_in(field, value)
                elif op == "$nin":
                    term = self.negate(lambda s, v=value: s.is_in(field, v))
                elif op == "$exists":
                    if json_path(field) is None:
                        term = self.inexact()
                    else:
                        term = f"{_type_expr(field)} IS {'NOT ' if value else ''}NULL"
                elif op in _RANGE:
                    term = self.compare(field, op, value)
                else:  # $regex, $options, $not, $elemMatch, $size, $all, $type, $mod, ...
                    term = self.inexact()
                if term is not None:
                    terms.append(term)
            return " AND ".join(terms) if terms else None
        return self.eq(field, cond)

    def where(self, criteria: dict) -> str | None:
        """AND of the translatable clauses (a superset of the matches when some are not)."""
        terms = []
        for key, cond in criteria.items():
            if key == "$and":
                parts = [self.where(c) for c in cond]
                terms += [p for p in parts if p is not None]
                continue
            if key in ("$or", "$nor"):
                subs = []
                for c in cond:
                    sub = _Sql()
                    term = sub.where(c)
                    if term is None or (key == "$nor" and not sub.exact):
                        subs = None
                        break
                    subs.append((term, sub))
                if subs is None:
                    self.inexact()
                    continue
                self.exact &= all(s.exact for _, s in subs)
                for _, s in subs:
                    self.params.extend(s.params)
                joined = "(" + " OR ".join(t for t, _ in subs) + ")" if subs else "0"
                terms.append(joined if key == "$or" else f"NOT IFNULL({joined}, 0)")
                continue
            if key.startswith("$"):  # $where, $expr, $text, $comment ...
                self.inexact()
                continue
            term = self.field(key, cond)
            if term is not None:
                terms.append(term)
        return " AND ".join(f"({t})" for t in terms) if terms else None


def translate(criteria: dict | None) -> tuple[str, list, bool]:
    """(WHERE text, parameters, exact): ``exact`` False means rows must still pass ``filter_applies``."""
    sql = _Sql()
    where = sql.where(criteria or {})
    return (where or "1"), sql.params, sql.exact


# -- projections and sorting ---------------------------------------------------------------------------------


def _projection(properties: dict | list | None) -> tuple[bool, dict, bool] | None:
    """(inclusion?, tree of paths, keep _id?) or None for whole documents."""
    if properties is None:
        return None
    spec = {p: 1 for p in properties} if isinstance(properties, (list, tuple)) else dict(properties)
    keep_id = bool(spec.pop("_id", 1))
    if not spec:
        return (False, {}, keep_id)
    inclusion = any(bool(v) for v in spec.values())
    tree: dict = {}
    for path, flag in spec.items():
        if bool(flag) != inclusion:
            raise StoreError(f"cannot mix inclusion and exclusion in a projection ({properties})")
        node = tree
        parts = path.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is True:
                break
            node = node.setdefault(p, {})
        else:
            node[parts[-1]] = True
    return inclusion, tree, keep_id


def _include(value: Any, tree: dict) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, sub in tree.items():
            if k in value:
                v = value[k] if sub is True else _include(value[k], sub)
                if v is not _MISSING:
                    out[k] = v
        return out
    if isinstance(value, list):
        return [_include(v, tree) for v in value if isinstance(v, (dict, list))]
    return _MISSING


def _exclude(value: Any, tree: dict) -> Any:
    if isinstance(value, dict):
        return {k: (v if k not in tree else _exclude(v, tree[k])) for k, v in value.items() if tree.get(k) is not True}
    if isinstance(value, list):
        return [_exclude(v, tree) for v in value]
    return value


_MISSING = object()


def project(doc: dict, projection: tuple[bool, dict, bool] | None) -> dict:
    """A document as MongoDB returns it under ``projection`` (see :func:`_projection`)."""
    if projection is None:
        return doc
    inclusion, tree, keep_id = projection
    if inclusion:
        out = _include(doc, tree)
        if keep_id and "_id" in doc:
            out = {"_id": doc["_id"], **out}
        return out
    out = _exclude(doc, tree)
    if not keep_id:
        out.pop("_id", None)
    return out


def _sort_items(sort: dict | list | None) -> list[tuple[str, int]]:
    if not sort:
        return []
    items = sort.items() if isinstance(sort, dict) else sort
    return [(k, Sort(v).value if isinstance(v, int) else v.value) for k, v in items]


_TYPE_RANK = {type(None): 0, int: 1, float: 1, str: 2, dict: 3, list: 4, bool: 5}


def _mongo_key(value: Any) -> tuple:
    rank = _TYPE_RANK.get(type(value), 6)
    if rank in (0, 3, 4, 6):
        return rank, json.dumps(value, sort_keys=False, default=str) if rank else ""
    return rank, value


class _PyKey:
    """Sort key of a document under several (field, direction) pairs, compared like MongoDB types."""

    __slots__ = ("dirs", "keys")

    def __init__(self, doc: dict, items: list[tuple[str, int]]):
        self.keys = [_mongo_key(get(doc, f)) for f, _ in items]
        self.dirs = [d for _, d in items]

    def __lt__(self, other: _PyKey) -> bool:
        for a, b, d in zip(self.keys, other.keys, self.dirs):
            if a != b:
                return (a < b) if d > 0 else (a > b)
        return False


# -- the Store -----------------------------------------------------------------------------------------------


class SQLiteCollection:
    """What ``_collection`` returns: the open connection and the collection's table."""

    def __init__(self, connection: sqlite3.Connection, name: str, database: str):
        self.connection, self.name, self.database = connection, name, database

    def __repr__(self) -> str:
        return f"SQLiteCollection({self.database!r}, {self.name!r})"


class SQLiteStore(Store):
    """A maggma Store: one collection as one table of JSON documents in the SQLite file ``path``.

    Several ``SQLiteStore`` (collections) share one file; several processes may use it at once.
    """

    def __init__(self, path: str | Path, collection_name: str, key: str = "task_id", timeout: float = 60.0,
                 **kwargs):
        """
        Args:
            path: the SQLite file (its folder is created on ``connect``, not before).
            collection_name: the collection (a table of that name).
            key: maggma's main key (``update`` without ``key`` upserts on it).
            timeout: seconds a write waits for another process's write to finish.
            kwargs: maggma ``Store`` arguments (``last_updated_field``, ``validator``, ...).
        """
        self.path = str(path)
        self.collection_name = collection_name
        self.timeout = timeout
        self.kwargs = kwargs
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.RLock()
        self._update_indexes: set[tuple[str, ...]] = set()
        super().__init__(key=key, **kwargs)

    # -- connection -------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"sqlite://{self.path}/{self.collection_name}"

    @property
    def _table(self) -> str:
        return '"' + self.collection_name.replace('"', '""') + '"'

    def connect(self, force_reset: bool = False):
        """Open the file (creating its folder and the collection's table) unless already open."""
        with self._lock:
            if self._connection is not None and self._pid == os.getpid() and not force_reset:
                return
            self._drop_connection()
            conn = open_database(self.path, self.timeout)
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self._table} (id INTEGER PRIMARY KEY, doc TEXT NOT NULL)")
            self._connection, self._pid = conn, os.getpid()
            self._update_indexes = set()

    def _drop_connection(self) -> None:
        if self._connection is None:
            return
        if self._pid == os.getpid():
            self._connection.close()
        else:  # inherited over fork: closing it here could disturb the parent's locks
            _ABANDONED.append(self._connection)
        self._connection = None

    def close(self):
        with self._lock:
            self._drop_connection()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreError("Must connect the SQLite store before attempting to use it")
        if self._pid != os.getpid():  # a forked child: its own connection
            self.connect(force_reset=True)
        return self._connection

    @property
    def _collection(self) -> SQLiteCollection:
        return SQLiteCollection(self._db, self.collection_name, self.path)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SQLiteStore):
            return False
        fields = ("collection_name", "last_updated_field")
        same_file = os.path.abspath(self.path) == os.path.abspath(other.path)
        return same_file and all(getattr(self, f) == getattr(other, f) for f in fields)

    def __hash__(self) -> int:
        return hash((os.path.abspath(self.path), self.collection_name, self.last_updated_field))

    # -- indexes ----------------------------------------------------------------------------------------

    def _index_name(self, keys: tuple[str, ...]) -> str:
        raw = f"ix_{self.collection_name}__{'__'.join(keys)}"
        name = re.sub(r"[^A-Za-z0-9_]", "_", raw)
        if name != raw or len(keys) > 1:  # "a.b" and "a_b", ("a", "b") and "a__b" must not share a name
            name += "_" + hashlib.sha1(repr((self.collection_name, keys)).encode()).hexdigest()[:8]
        return f'"{name}"'

    def _existing_index(self, name: str) -> bool | None:
        """None if absent, else whether it is unique."""
        for row in self._db.execute(f"PRAGMA index_list({self._table})"):
            if f'"{row[1]}"' == name:
                return bool(row[2])
        return None

    def ensure_index(self, key: str | list[str] | tuple[str, ...], unique: bool = False) -> bool:
        """Create an index on ``json_extract`` of ``key`` (a list: one compound index); True if it exists.

        ``unique`` fails (False) if stored documents already repeat the key.
        """
        keys = (key,) if isinstance(key, str) else tuple(key)
        exprs = [field_expr(k) for k in keys]
        if not keys or any(e is None for e in exprs):
            return False
        name = self._index_name(keys)
        with self._lock:
            existing = self._existing_index(name)
            if existing is not None and (existing or not unique):
                return True
            try:
                with write_transaction(self._db) as db:
                    if existing is not None:
                        db.execute(f"DROP INDEX IF EXISTS {name}")
                    db.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {name} "
                               f"ON {self._table} ({', '.join(exprs)})")
            except sqlite3.IntegrityError:
                return False
            return True

    def indexes(self) -> list[dict]:
        """Name, uniqueness and SQL of this collection's indexes."""
        rows = self._db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                (self.collection_name,)).fetchall()
        return [{"name": n, "unique": "CREATE UNIQUE" in (s or ""), "sql": s} for n, s in rows]

    def _ensure_update_index(self, keys: tuple[str, ...]) -> None:
        if keys in self._update_indexes:
            return
        if not self.ensure_index(keys, unique=True):
            self.ensure_index(keys)  # repeated keys already stored: an index still speeds the upsert
        self._update_indexes.add(keys)

    # -- reading ----------------------------------------------------------------------------------------

    def _select(self, criteria: dict | None, projection, sort: dict | list | None, skip: int,
                limit: int) -> list[dict]:
        """Matching documents, projected; SQL does the match, order, skip and limit wherever it can."""
        criteria = _sanitize_query(criteria or {})
        where, params, exact = translate(criteria)
        items = _sort_items(sort)
        order_terms = [(field_expr(f), d) for f, d in items]
        sql_sort = all(e is not None for e, _ in order_terms)
        # read only the top-level fields a projection asks for, when SQL decides the match alone
        fields = None
        if exact and _HAS_ARROW and projection is not None and projection[0]:
            tops = list(projection[1]) + (["_id"] if projection[2] else [])
            if all(json_path(t) for t in tops):
                fields = tops
        cols = ", ".join(f"doc -> '{json_path(t)}'" for t in fields) if fields else "doc"
        sql = f"SELECT {cols} FROM {self._table} WHERE {where}"
        if items and sql_sort:
            direction = "DESC" if items[0][1] < 0 else "ASC"
            sql += " ORDER BY " + ", ".join(f"{e} {'DESC' if d < 0 else 'ASC'}" for e, d in order_terms)
            sql += f", id {direction}"
        else:
            sql += " ORDER BY id"
        in_sql = exact and (sql_sort or not items)
        if in_sql and (limit or skip):
            sql += f" LIMIT {int(limit) if limit else -1} OFFSET {int(skip)}"
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        if fields:
            docs = [{t: loads(v) for t, v in zip(fields, row) if v is not None} for row in rows]
        else:
            docs = [loads(r[0]) for r in rows]
            if not exact:
                docs = [d for d in docs if filter_applies(criteria, d)]
        if not in_sql:
            if items and not sql_sort:
                docs.sort(key=lambda d: _PyKey(d, items))
            docs = docs[skip:]
            if limit:
                docs = docs[:limit]
        return [project(d, projection) for d in docs]

    def query(self, criteria: dict | None = None, properties: dict | list | None = None,
              sort: dict[str, Sort | int] | None = None, skip: int = 0, limit: int = 0,
              **kwargs) -> Iterator[dict]:
        """Documents matching ``criteria`` (``hint`` and other pymongo arguments are ignored)."""
        yield from self._select(criteria, _projection(properties), sort, skip, limit)

    def count(self, criteria: dict | None = None, hint: dict | None = None) -> int:
        criteria = _sanitize_query(criteria or {})
        where, params, exact = translate(criteria)
        if exact:
            with self._lock:
                return self._db.execute(f"SELECT count(*) FROM {self._table} WHERE {where}", params).fetchone()[0]
        return len(self._select(criteria, None, None, 0, 0))

    def distinct(self, field: str, criteria: dict | None = None, all_exist: bool = False) -> list:
        """Distinct values of ``field`` (array values contribute their elements, as in MongoDB)."""
        seen, out = set(), []
        for doc in self.query(criteria, properties=[field]):
            if not has(doc, field):
                continue
            value = get(doc, field)
            for v in value if isinstance(value, list) else [value]:
                k = json.dumps(v, default=str)
                if k not in seen:
                    seen.add(k)
                    out.append(v)
        return out

    def groupby(self, keys: list[str] | str, criteria: dict | None = None, properties: dict | list | None = None,
                sort: dict[str, Sort | int] | None = None, skip: int = 0,
                limit: int = 0) -> Iterator[tuple[dict, list[dict]]]:
        """(key document, documents) per distinct value of ``keys`` (a missing key groups as absent)."""
        keys = [keys] if isinstance(keys, str) else list(keys)
        props = list(properties) if properties else None
        if props is not None:
            props = [p for p in props if p != "_id"] + keys
        groups: dict[str, tuple[dict, list]] = {}
        for doc in self.query(criteria, properties=props, sort=sort, skip=skip, limit=limit):
            id_doc: dict = {}
            for k in keys:
                if has(doc, k):
                    set_(id_doc, k, get(doc, k))
            gk = json.dumps(id_doc, sort_keys=True, default=str)
            groups.setdefault(gk, (id_doc, []))[1].append(doc)
        yield from groups.values()

    @property
    def last_updated(self) -> datetime:
        """Newest ``last_updated_field`` (stored as an ISO string, returned as a datetime)."""
        field = self.last_updated_field
        doc = next(self.query(properties=[field], sort={field: -1}, limit=1), None)
        if doc and not has(doc, field):
            raise StoreError(f"No field '{field}' in store document. Please ensure Store.last_updated_field "
                             "is a datetime field in your store that represents the time of last update to each "
                             "document.")
        if not doc or get(doc, field) is None:
            return datetime.min
        value = get(doc, field)
        if isinstance(value, str):
            return datetime.fromisoformat(value)
        return self._lu_func[0](value)

    def explain(self, criteria: dict | None = None, sort: dict | None = None) -> str:
        """SQLite's ``EXPLAIN QUERY PLAN`` of a query: ``SEARCH ... USING INDEX`` vs ``SCAN``."""
        where, params, _ = translate(_sanitize_query(criteria or {}))
        order = ""
        if sort:
            order = " ORDER BY " + ", ".join(f"{field_expr(f)} {'DESC' if d < 0 else 'ASC'}"
                                             for f, d in _sort_items(sort))
        rows = self._db.execute(f"EXPLAIN QUERY PLAN SELECT doc FROM {self._table} WHERE {where}{order}",
                                params).fetchall()
        return "\n".join(r[-1] for r in rows)

    # -- writing ----------------------------------------------------------------------------------------

    def update(self, docs: list[dict] | dict, key: list | str | None = None):
        """Upsert: each document replaces the one with the same ``key`` values, or is added.

        The whole batch is one transaction; the key lookup goes through a unique index on the key fields.
        """
        if not isinstance(docs, list):
            docs = [docs]
        keys = tuple(key) if isinstance(key, (list, tuple)) else ((key or self.key),)
        rows = []
        for d in (jsanitize(x, allow_bson=True, recursive_msonable=True) for x in docs):
            if self.validator and not self.validator.is_valid(d):
                if self.validator.strict:
                    raise ValueError(self.validator.validation_errors(d))
                self.logger.error(self.validator.validation_errors(d))
                continue
            search = {k: (d[k] if k in d else get(d, k)) for k in keys}
            rows.append((search, dumps(d)))
        if not rows:
            return
        with self._lock:
            self._ensure_update_index(keys)
            db = self._db
            with write_transaction(db):
                for search, text in rows:
                    where, params, exact = translate(_sanitize_query(search))
                    if exact:
                        hit = db.execute(f"SELECT id FROM {self._table} WHERE {where} LIMIT 1", params).fetchone()
                    else:  # a key value SQL cannot compare (a sub-document): match in Python
                        hit = next(((i,) for i, t in db.execute(f"SELECT id, doc FROM {self._table} WHERE {where}",
                                                                 params) if filter_applies(search, loads(t))), None)
                    if hit:
                        db.execute(f"UPDATE {self._table} SET doc = ? WHERE id = ?", (text, hit[0]))
                    else:
                        db.execute(f"INSERT INTO {self._table} (doc) VALUES (?)", (text,))

    def remove_docs(self, criteria: dict):
        """Delete the documents matching ``criteria``."""
        criteria = _sanitize_query(criteria or {})
        where, params, exact = translate(criteria)
        with self._lock:
            db = self._db
            with write_transaction(db):
                if exact:
                    db.execute(f"DELETE FROM {self._table} WHERE {where}", params)
                    return
                ids = [i for i, t in db.execute(f"SELECT id, doc FROM {self._table} WHERE {where}", params)
                       if filter_applies(criteria, loads(t))]
                for n in range(0, len(ids), _CHUNK):
                    chunk = ids[n:n + _CHUNK]
                    db.execute(f"DELETE FROM {self._table} WHERE id IN ({','.join('?' * len(chunk))})", chunk)
