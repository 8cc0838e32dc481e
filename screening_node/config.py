"""Typed node settings: embedded defaults, one TOML file, environment overrides.

Precedence (lowest first): defaults in this module, the TOML file, environment
variables ``SCREENING_NODE_<SECTION>_<KEY>`` (for example
``SCREENING_NODE_INTAKE_STABLE_AGE_S=10``), then command-line options. Every
value is checked when the node starts; an invalid one raises ``ConfigError``
naming the key and what is allowed, so a typo never surfaces hours later.

To add a setting: add a field to the section dataclass with a default, and a
line to ``config/node.example.toml`` explaining it. Validation comes from the
field's type plus an optional entry in ``_CHECKS``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, get_type_hints

from screening_node.analysis.thresholds import MAX_MEASURE_SPACING_MM, SUSPECT_MIN_GRADE
from screening_node.errors import ConfigError

ENV_PREFIX = "SCREENING_NODE_"
AE_TITLE_RE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # DICOM AE VR: no backslash, 16 chars


@dataclass(frozen=True)
class Destination:
    """A DICOM peer that receives our results by C-STORE."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "Destination":
        """Parse ``AET@HOST:PORT`` (the ``serve --destination`` form)."""
        match = re.fullmatch(r"([^@]{1,16})@([^:]+):(\d{1,5})", text.strip())
        if not match:
            raise ConfigError(f"destination {text!r}: expected AET@HOST:PORT, e.g. ORTHANC@127.0.0.1:4242")
        dest = cls(match.group(1).strip(), match.group(2), int(match.group(3)))
        dest.validate("delivery.destinations")
        return dest

    def validate(self, key: str) -> None:
        if not AE_TITLE_RE.match(self.ae_title) or not self.ae_title.strip():
            raise ConfigError(f"{key}: AE title {self.ae_title!r} must be 1-16 printable characters, no backslash")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"{key}: port {self.port} must be between 1 and 65535")
        if not self.host:
            raise ConfigError(f"{key}: host must not be empty")

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class NodeSection:
    ae_title: str = "SCREENING"
    host: str = "0.0.0.0"
    port: int = 11112
    max_pdu: int = 1048576  # bytes; 0 = unlimited. Large PDUs cut per-PDU overhead on big CT slices.
    max_associations: int = 16
    network_timeout_s: float = 60.0


@dataclass(frozen=True)
class StorageSection:
    data_dir: str = "./screening-data"


@dataclass(frozen=True)
class DatabaseSection:
    url: str = ""  # empty: sqlite:///<data_dir>/screening-node.sqlite3


@dataclass(frozen=True)
class IntakeSection:
    stable_age_s: float = 30.0
    check_interval_s: float = 1.0


@dataclass(frozen=True)
class RoutingSection:
    modalities: tuple[str, ...] = ("CT",)
    body_part_keywords: tuple[str, ...] = (
        "CHEST", "THORAX", "THORAC", "LUNG", "ABDOMEN", "ABD", "PELVIS", "BODY", "TRUNK",
        "WHOLEBODY", "WHOLE BODY", "WB", "TORSO", "SPINE", "TSPINE", "LSPINE", "CAP", "TAP",
        "LIVER", "PANCREA", "KIDNEY", "RENAL", "AORTA", "COLON", "ENTERO", "URO", "POLYTRAUMA",
    )
    reject_keywords: tuple[str, ...] = ("HEAD", "BRAIN", "NECK", "SINUS", "KNEE", "ANKLE", "FOOT", "HAND", "WRIST")
    accept_unknown_body_part: bool = False
    min_slices: int = 40
    min_z_coverage_mm: float = 100.0
    max_slice_spacing_mm: float = MAX_MEASURE_SPACING_MM  # the analysis measures no heights on coarser slices
    max_slice_thickness_mm: float = MAX_MEASURE_SPACING_MM  # 5 mm slices every 2.5 mm blur like 5 mm slices
    min_patient_age_years: int = 0  # 0 = no age rule
    # A sagittal series (a reformat of thin slices, kept beside thick axial ones) is screened where no axial
    # series of the study is eligible; it must reach this far across the patient (first slice to last, slabs
    # included) for the ribs and the pelvis beside the spine that label the levels.
    sagittal_reformats: bool = True
    min_sagittal_width_mm: float = 120.0  # 80 mm labelled no level on phantoms, 120 most (sagittal_width.py)
    # An eligible axial series thicker than this is screened after a sagittal one (0: axial always first).
    sagittal_before_axial_thicker_than_mm: float = 0.0
    kernel_preference: tuple[str, ...] = ("STANDARD", "SOFT", "B30", "B31", "B40", "I30", "I31", "FC", "BONE", "B60", "B70", "LUNG")


@dataclass(frozen=True)
class AnalysisSection:
    engine: str = "analytic"
    suspect_min_grade: int = SUSPECT_MIN_GRADE  # worst grade from which a study is "fracture suspected"


@dataclass(frozen=True)
class DeliverySection:
    destinations: tuple[Destination, ...] = ()
    calling_ae_title: str = "SCREENING"
    max_attempts: int = 8
    backoff_initial_s: float = 5.0
    backoff_max_s: float = 600.0
    poll_interval_s: float = 1.0


@dataclass(frozen=True)
class LoggingSection:
    level: str = "INFO"


@dataclass(frozen=True)
class Settings:
    node: NodeSection = field(default_factory=NodeSection)
    storage: StorageSection = field(default_factory=StorageSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    intake: IntakeSection = field(default_factory=IntakeSection)
    routing: RoutingSection = field(default_factory=RoutingSection)
    analysis: AnalysisSection = field(default_factory=AnalysisSection)
    delivery: DeliverySection = field(default_factory=DeliverySection)
    logging: LoggingSection = field(default_factory=LoggingSection)

    # Derived paths: one place decides where things live under data_dir.
    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir).expanduser().resolve()

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.data_dir / 'screening-node.sqlite3'}"


def _positive(value: float) -> bool:
    return value > 0


def _non_negative(value: float) -> bool:
    return value >= 0


# key -> (predicate, what is allowed). Type checks come from the dataclass annotations.
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "node.ae_title": (lambda v: bool(AE_TITLE_RE.match(v)) and bool(v.strip()), "1-16 printable characters, no backslash"),
    "node.port": (lambda v: 0 <= v <= 65535, "an integer between 1 and 65535 (0: any free port)"),
    "node.max_pdu": (lambda v: v == 0 or 4096 <= v <= 2**32 - 1, "0 (unlimited) or 4096..4294967295 bytes"),
    "node.max_associations": (lambda v: 1 <= v <= 1000, "an integer between 1 and 1000"),
    "node.network_timeout_s": (_positive, "a number of seconds > 0"),
    "storage.data_dir": (lambda v: bool(v.strip()), "a non-empty directory path"),
    "database.url": (lambda v: v == "" or v.startswith(("sqlite:", "postgresql")), "empty (SQLite under data_dir), sqlite:///PATH or postgresql+psycopg://..."),
    "intake.stable_age_s": (_non_negative, "a number of seconds >= 0"),
    "intake.check_interval_s": (_positive, "a number of seconds > 0"),
    "routing.modalities": (lambda v: len(v) > 0, "a non-empty list of modality codes such as [\"CT\"]"),
    "routing.min_slices": (lambda v: v >= 1, "an integer >= 1"),
    "routing.min_z_coverage_mm": (_non_negative, "a number of millimetres >= 0"),
    "routing.max_slice_spacing_mm": (_positive, "a number of millimetres > 0"),
    "routing.max_slice_thickness_mm": (_positive, "a number of millimetres > 0"),
    "routing.min_sagittal_width_mm": (_non_negative, "a number of millimetres >= 0"),
    "routing.sagittal_before_axial_thicker_than_mm": (_non_negative, "a number of millimetres >= 0 (0: never)"),
    "routing.min_patient_age_years": (lambda v: 0 <= v <= 130, "an integer 0..130 (0 disables the rule)"),
    "analysis.engine": (lambda v: v in ("analytic", "neural"), "\"analytic\" or \"neural\""),
    "analysis.suspect_min_grade": (lambda v: v in (1, 2, 3), "a Genant grade 1, 2 or 3"),
    "delivery.calling_ae_title": (lambda v: bool(AE_TITLE_RE.match(v)) and bool(v.strip()), "1-16 printable characters, no backslash"),
    "delivery.max_attempts": (lambda v: 1 <= v <= 1000, "an integer between 1 and 1000"),
    "delivery.backoff_initial_s": (_positive, "a number of seconds > 0"),
    "delivery.backoff_max_s": (_positive, "a number of seconds > 0"),
    "delivery.poll_interval_s": (_positive, "a number of seconds > 0"),
    "logging.level": (lambda v: v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"), "DEBUG, INFO, WARNING or ERROR"),
}


def _section_types() -> dict[str, type]:
    return {f.name: get_type_hints(Settings)[f.name] for f in dataclasses.fields(Settings)}


def _coerce(key: str, raw: Any, annotation: Any, from_env: bool) -> Any:
    """Turn a TOML or environment value into the annotated type, or raise ConfigError."""
    text = str(annotation)
    try:
        if annotation is bool:
            if isinstance(raw, bool):
                return raw
            if from_env and str(raw).lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return str(raw).lower() in ("1", "true", "yes", "on")
            raise ValueError
        if annotation is int:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, int) or (from_env and re.fullmatch(r"-?\d+", str(raw))):
                return int(raw)
            raise ValueError
        if annotation is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw) if (isinstance(raw, (int, float)) or from_env) else _fail()
        if annotation is str:
            if isinstance(raw, str):
                return raw
            raise ValueError
        if "Destination" in text:
            items = json.loads(raw) if from_env and str(raw).strip().startswith("[") else raw
            if from_env and isinstance(items, str):
                items = [s for s in items.split(",") if s.strip()]
            out = []
            for item in items:
                if isinstance(item, str):
                    out.append(Destination.parse(item))
                elif isinstance(item, Mapping):
                    unknown = set(item) - {"ae_title", "host", "port"}
                    if unknown:
                        raise ConfigError(f"{key}: unknown destination field(s) {sorted(unknown)}; allowed: ae_title, host, port")
                    dest = Destination(str(item["ae_title"]), str(item["host"]), int(item["port"]))
                    dest.validate(key)
                    out.append(dest)
                else:
                    raise ValueError
            return tuple(out)
        if text.startswith("tuple[str"):
            items = raw
            if from_env:
                items = json.loads(raw) if str(raw).strip().startswith("[") else [s.strip() for s in str(raw).split(",") if s.strip()]
            if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
                raise ValueError
            return tuple(items)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError, json.JSONDecodeError):
        pass
    raise ConfigError(f"{key}: {raw!r} is not a valid {_type_name(annotation)}")


def _fail() -> Any:
    raise ValueError


def _type_name(annotation: Any) -> str:
    text = str(annotation)
    if "Destination" in text:
        return "list of destinations (AET@HOST:PORT strings or {ae_title, host, port} tables)"
    if text.startswith("tuple[str"):
        return "list of strings"
    return getattr(annotation, "__name__", text)


def load_settings(path: Path | str | None = None, overrides: Mapping[str, object] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Build validated settings. ``overrides`` maps ``section.key`` to already-typed values."""
    environ = os.environ if environ is None else environ
    values: dict[str, dict[str, Any]] = {}
    if path is not None:
        path = Path(path)
        try:
            with path.open("rb") as handle:
                document = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"configuration file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
        values = {k: dict(v) if isinstance(v, dict) else v for k, v in document.items()}

    sections = _section_types()
    built: dict[str, Any] = {}
    for section_name, section_type in sections.items():
        raw_section = values.pop(section_name, {})
        if not isinstance(raw_section, dict):
            raise ConfigError(f"[{section_name}] must be a table")
        hints = get_type_hints(section_type)
        kwargs: dict[str, Any] = {}
        for field_name, annotation in hints.items():
            key = f"{section_name}.{field_name}"
            env_name = f"{ENV_PREFIX}{section_name}_{field_name}".upper()
            if key in (overrides or {}):
                value = (overrides or {})[key]
                if isinstance(value, (list, str)) and "Destination" in str(annotation):
                    value = _coerce(key, value if isinstance(value, list) else [value], annotation, False)
                elif not isinstance(value, annotation if isinstance(annotation, type) else object):
                    value = _coerce(key, value, annotation, True)
            elif env_name in environ:
                value = _coerce(key, environ[env_name], annotation, True)
            elif field_name in raw_section:
                value = _coerce(key, raw_section.pop(field_name), annotation, False)
            else:
                continue
            raw_section.pop(field_name, None)
            if key in _CHECKS and not _CHECKS[key][0](value):
                raise ConfigError(f"{key}: {value!r} is not allowed; expected {_CHECKS[key][1]}")
            kwargs[field_name] = value
        if raw_section:
            unknown = ", ".join(sorted(raw_section))
            raise ConfigError(f"[{section_name}] has unknown key(s) {unknown}; allowed: {', '.join(hints)}")
        built[section_name] = section_type(**kwargs)
    if values:
        raise ConfigError(f"unknown section(s) {', '.join(sorted(values))}; allowed: {', '.join(sections)}")
    settings = Settings(**built)
    if settings.delivery.backoff_max_s < settings.delivery.backoff_initial_s:
        raise ConfigError("delivery.backoff_max_s must be >= delivery.backoff_initial_s")
    return settings
