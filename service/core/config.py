"""One pydantic-settings ``Settings`` for the API and the workers, read from the environment.

Every field can be set by the environment variable named in its ``validation_alias``.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nas.workspace import home

__all__ = ["Settings", "get_settings"]


def _default_database_url() -> str:
    return f"sqlite:///{home() / 'service.db'}"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Configuration of the service (API process and workers share it)."""

    model_config = SettingsConfigDict(
        env_prefix="", populate_by_name=True, extra="ignore", validate_default=True
    )

    database_url: str = Field(
        default_factory=_default_database_url,
        validation_alias=_env("DATABASE_URL", "database_url"),
        description="SQLAlchemy URL of the service database (SQLite in $NAS_HOME by default; "
        "postgresql+psycopg://... for PostgreSQL).",
    )
    api_key: str | None = Field(
        default=None,
        validation_alias=_env("NAS_API_KEY", "api_key"),
        description="When set, every route but /health and the API docs (/docs, /redoc, "
        "/openapi.json) requires it (X-API-Key or Bearer).",
    )
    max_budget: int = Field(
        default=1000,
        ge=1,
        validation_alias=_env("NAS_MAX_BUDGET", "max_budget"),
        description="Largest budget (number of trials) a search may ask for.",
    )
    max_running: int = Field(
        default=1,
        ge=1,
        validation_alias=_env("NAS_MAX_RUNNING", "max_running"),
        description="Searches running at once over all workers; later ones wait queued.",
    )
    max_queued: int = Field(
        default=100,
        ge=1,
        validation_alias=_env("NAS_MAX_QUEUED", "max_queued"),
        description="Searches waiting in the queue; POST /searches beyond it answers 429.",
    )
    max_concurrency: int = Field(
        default=64,
        ge=1,
        validation_alias=_env("NAS_MAX_CONCURRENCY", "max_concurrency"),
        description="Largest per-search trial concurrency a request may ask for.",
    )
    max_epochs: int = Field(
        default=200,
        ge=1,
        validation_alias=_env("NAS_MAX_EPOCHS", "max_epochs"),
        description="Largest number of training epochs per trial a request may ask for.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        validation_alias=_env("NAS_MAX_BODY_BYTES", "max_body_bytes"),
        description="Request bodies above this size are refused with 413.",
    )
    cache_seconds: float = Field(
        default=1.0,
        ge=0,
        validation_alias=_env("NAS_CACHE_SECONDS", "cache_seconds"),
        description="How long the API reuses a running search's rendered Pareto front "
        "(a finished search's front is kept until evicted; 0 turns the cache off).",
    )
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_env("NAS_LEASE_SECONDS", "lease_seconds"),
        description="A running search whose worker has not renewed its lease for this long "
        "is taken over by another worker.",
    )
    heartbeat_seconds: float | None = Field(
        default=None,
        gt=0,
        validation_alias=_env("NAS_HEARTBEAT_SECONDS", "heartbeat_seconds"),
        description="How often a worker renews its lease (default: lease_seconds / 3).",
    )
    poll_seconds: float = Field(
        default=1.0,
        gt=0,
        validation_alias=_env("NAS_POLL_SECONDS", "poll_seconds"),
        description="How often an idle worker looks for queued searches.",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        validation_alias=_env("NAS_MAX_ATTEMPTS", "max_attempts"),
        description="A search whose worker died this many times is marked failed.",
    )
    search_function: str = Field(
        default="nas.search:run_search",
        validation_alias=_env("NAS_SEARCH_FUNCTION", "search_function"),
        description="'module:function' the workers call to run a search "
        "(same signature as nas.search.run_search).",
    )
    trial_function: str | None = Field(
        default=None,
        validation_alias=_env("NAS_TRIAL_FUNCTION", "trial_function"),
        description="Optional 'module:function' passed to run_search as trial_fn "
        "(replaces training; for tests and benchmarks).",
    )
    optuna_storage: str | None = Field(
        default=None,
        validation_alias=_env("NAS_OPTUNA_STORAGE", "optuna_storage"),
        description="Optuna storage URL for the searches (default: the workspace's).",
    )
    mlflow_uri: str | None = Field(
        default=None,
        validation_alias=_env("MLFLOW_TRACKING_URI", "mlflow_uri"),
        description="MLflow tracking URI (default: the workspace's).",
    )
    ray_address: str | None = Field(
        default=None,
        validation_alias=_env("RAY_ADDRESS", "ray_address"),
        description="Ray cluster address for the searches (default: a local Ray).",
    )
    data_root: str | None = Field(
        default=None,
        validation_alias=_env("NAS_DATA_ROOT", "data_root"),
        description="Folder under which a request's data_dir is resolved "
        "(default: $NAS_HOME/data).",
    )

    @field_validator("api_key")
    @classmethod
    def _empty_key_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between two lease renewals."""
        return self.heartbeat_seconds or max(self.lease_seconds / 3.0, 0.05)


def get_settings() -> Settings:
    """Settings from the environment as it is now."""
    return Settings()
