"""Settings: the one place the environment is read.

Conventional names (``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``, ``PORT``,
``OTEL_EXPORTER_OTLP_ENDPOINT``) are read as-is; everything of our own takes the
``COGNITIONOS_`` prefix. Every field is documented in the README's settings table.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["ConfigError", "Environment", "Settings"]

_WEAK_SECRETS = {"", "secret", "changeme", "change-me", "changethis", "dev", "development"}
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """The settings cannot run a server safely; the message says what to set."""


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def _conventional(name: str) -> AliasChoices:
    return AliasChoices(name, f"COGNITIONOS_{name}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COGNITIONOS_", extra="ignore")

    env: Environment = Environment.DEVELOPMENT

    # Services. Unset URLs mean the embedded services of the zero-config mode.
    database_url: str | None = Field(default=None, validation_alias=_conventional("DATABASE_URL"))
    redis_url: str | None = Field(default=None, validation_alias=_conventional("REDIS_URL"))
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("cognitionos")))
    db_pool_size: int = 10

    # HTTP server.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, validation_alias=_conventional("PORT"))
    graphiql: bool | None = None  # None: on in development, off in production
    introspection: bool | None = None  # None: on in development, off in production
    max_body_bytes: int = 100_000
    max_query_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2_000
    document_cache_size: int = 1_000  # parsed + validated documents kept (0: none)
    # Peers whose X-Forwarded-For/-Proto are believed (IPs or CIDRs, "*" for any); empty:
    # proxy headers are ignored and the client is the TCP peer.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Auth.
    secret_key: str | None = Field(default=None, validation_alias=_conventional("SECRET_KEY"))
    jwt_issuer: str = "cognitionos"
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 7 * 24 * 3600
    bcrypt_rounds: int = Field(default=12, ge=12, le=16)
    password_min_length: int = 10
    lockout_threshold: int = 5
    lockout_seconds: int = 30 * 60
    allow_registration: bool = True
    # Who a credential is (user role and status, API key), kept in-process between
    # requests; every change is seen at the next request through Redis (see README).
    credential_cache_seconds: float = Field(default=5.0, ge=0, le=60)  # 0: read every time
    credential_cache_size: int = Field(default=10_000, ge=0)  # users, keys and tokens each

    # Rate limits (requests per window, per key), kept in Redis.
    rate_limit_window_seconds: int = 60
    graphql_rate_limit: int = 600  # per user, or per IP when anonymous
    login_rate_limit_per_ip: int = 30
    login_rate_limit_per_account: int = 10

    # Worker.
    worker_in_process: bool | None = None  # None: in-process with the embedded services
    worker_poll_delay_seconds: float = 0.01  # while jobs run
    worker_idle_poll_seconds: float = 1.0  # idle: dispatches wake the worker before this
    worker_max_jobs: int = 50
    worker_metrics_port: int | None = None  # a separate worker serves /metrics here
    worker_metrics_host: str = "127.0.0.1"

    # Websockets and live delivery.
    ws_init_timeout_seconds: float = 10.0  # connection_init must arrive within this
    ws_keepalive_seconds: float = 15.0  # server pings on idle connections
    ws_max_subscriptions: int = 100  # per connection
    ws_max_connections_per_user: int = Field(default=20, ge=1)  # across every replica
    pubsub_queue_size: int = 1000  # per subscriber; a slower one is cut off

    # Workflow engine.
    step_lease_seconds: float = 30.0  # a dead worker's step is re-run this long after
    reconcile_interval_seconds: float = 1.0
    dispatch_grace_seconds: float = 5.0  # QUEUED this long without starting: re-dispatch
    max_lease_losses: int = 5  # a step whose workers keep dying fails after this many
    idempotency_window_seconds: int = 24 * 3600
    schedule_tick_seconds: float = 1.0

    # Step kinds.
    http_allow_hosts: list[str] = Field(default_factory=list)  # hosts or CIDRs, JSON list
    http_timeout_seconds: float = 30.0
    http_max_response_bytes: int = 1_000_000
    python_steps_enabled: bool = False
    python_step_cpu_seconds: int = 10
    python_step_memory_mb: int = 512
    python_step_file_mb: int = 10
    python_step_wall_seconds: float = 30.0
    sql_step_database_url: str | None = None  # a role that cannot read our tables
    sql_step_pool_size: int = Field(default=5, ge=1)  # SQL steps' own pool, no overflow
    sql_statement_timeout_ms: int = 5_000
    sql_max_rows: int = 1_000
    # Templates (step configs, prompts, notifications) render in separate processes.
    template_timeout_seconds: float = 5.0  # a step's own timeoutSeconds wins when smaller
    template_max_output_bytes: int = 1_000_000
    template_memory_mb: int = 512  # RLIMIT_AS of each render process
    template_workers: int = 2  # render processes per server or worker process

    # LLM providers. A provider exists when its key (or base URL) is set.
    openai_api_key: str | None = Field(
        default=None, validation_alias=_conventional("OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=_conventional("OPENAI_BASE_URL")
    )
    anthropic_api_key: str | None = Field(
        default=None, validation_alias=_conventional("ANTHROPIC_API_KEY")
    )
    anthropic_base_url: str | None = Field(
        default=None, validation_alias=_conventional("ANTHROPIC_BASE_URL")
    )
    llm_compatible_base_url: str | None = None  # any OpenAI-compatible server (Ollama, vLLM)
    llm_compatible_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"  # the default agents' and LLM steps' model
    llm_provider: str | None = None  # None: inferred from the model and the keys set
    llm_fallbacks: list[str] = Field(default_factory=list)  # ["anthropic:claude-haiku-4-5"]
    llm_max_retries: int = 2  # per provider, on 429/5xx/timeouts/connection errors
    llm_retry_base_seconds: float = 0.5
    llm_retry_max_seconds: float = 30.0  # a longer Retry-After moves on to the fallback
    llm_timeout_seconds: float = 120.0
    llm_max_tokens: int = 1024
    llm_prices: dict[str, list[float]] = Field(default_factory=dict)  # model: [in, out] per 1M
    # Send output schemas natively (response_format, a forced tool); false: in the prompt.
    llm_structured_output: bool = True
    agent_failure_threshold: int = 3  # consecutive failed calls put an agent in ERROR
    agent_probe_seconds: float = 60.0  # an agent in ERROR takes one probe call after this
    agent_wait_seconds: float = 2.0  # no free agent: the step is re-dispatched after this
    planner_max_repairs: int = 2
    planner_max_tokens: int = Field(default=1024, ge=64)  # answer limit of each planner call

    # Memory.
    memory_embedder: str = "wordllama"  # or "openai" (needs OPENAI_API_KEY)
    memory_dim: int = 256  # one per deployment; after a change: cognitionos memory reembed
    memory_openai_model: str = "text-embedding-3-small"
    memory_working_ttl_seconds: int = 3600
    memory_short_term_ttl_seconds: int = 7 * 86400
    # Recency half-life per type, seconds; a type left out does not decay.
    memory_half_lives: dict[str, float] = Field(
        default_factory=lambda: {
            "WORKING": 3600.0,
            "SHORT_TERM": 86400.0,
            "EPISODIC": 30 * 86400.0,
        }
    )
    memory_dedup_threshold: float = 0.95  # cosine at or above which a store merges
    memory_candidates: int = 20  # per ranking (vector, text) before fusion
    memory_ef_search: int = 200  # HNSW search breadth (recall@10 0.98 at 100k, see README)
    memory_purge_interval_seconds: float = 60.0
    agent_memories: int = 5  # memories an AGENT step is given

    # Notifications.
    notification_tick_seconds: float = 0.5  # how often workers send what is due
    notification_max_attempts: int = 8
    notification_retry_base_seconds: float = 15.0  # doubling: 8 attempts span ~32 minutes
    notification_rate_limit: int = 60  # per user and channel per window; the excess waits
    notification_rate_window_seconds: int = 60
    notification_digest_seconds: int = 300  # LOW priority: gathered this long, sent as one
    notification_dedup_seconds: int = 24 * 3600
    notification_http_timeout_seconds: float = 10.0
    notification_webhook_secret: str | None = None  # None: derived from SECRET_KEY
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True  # upgrade a plain connection (port 587)
    smtp_tls: bool = False  # implicit TLS (port 465)
    smtp_from: str = "CognitionOS <noreply@localhost>"
    sms_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str | None = Field(
        default=None, validation_alias=_conventional("TWILIO_ACCOUNT_SID")
    )
    twilio_auth_token: str | None = Field(
        default=None, validation_alias=_conventional("TWILIO_AUTH_TOKEN")
    )
    sms_from: str | None = None

    # Observability.
    metrics_token: str | None = None  # set: /metrics needs Authorization: Bearer <token>
    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON unless stdout is a terminal
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "COGNITIONOS_OTLP_ENDPOINT"),
    )
    otel_service_name: str = Field(
        default="cognitionos", validation_alias=AliasChoices("OTEL_SERVICE_NAME")
    )

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _split_ips(cls, value: Any) -> Any:
        """Accept a JSON list or a comma-separated string."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _ips_or_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item)  # an address is a /32 (or /128) network
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from exc
        return value

    @model_validator(mode="after")
    def _production_is_explicit(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            if self.graphiql is None:
                self.graphiql = False
            if self.introspection is None:
                self.introspection = False
        else:
            if self.graphiql is None:
                self.graphiql = True
            if self.introspection is None:
                self.introspection = True
        return self

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def embedded(self) -> bool:
        """True when at least one service has to be started by us."""
        return self.database_url is None or self.redis_url is None

    @property
    def run_worker_in_process(self) -> bool:
        if self.worker_in_process is not None:
            return self.worker_in_process
        return self.embedded

    def check_production(self) -> None:
        """Refuse to run production on unsafe or missing settings."""
        if not self.is_production:
            return
        problems = []
        if not self.database_url:
            problems.append("DATABASE_URL is not set (production never starts embedded services)")
        if not self.redis_url:
            problems.append("REDIS_URL is not set (production never starts embedded services)")
        key = self.secret_key or ""
        if key.strip().lower() in _WEAK_SECRETS or len(key) < MIN_SECRET_LENGTH:
            problems.append(
                f"SECRET_KEY must be set to a random value of at least {MIN_SECRET_LENGTH} "
                "characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if problems:
            raise ConfigError("refusing to start in production: " + "; ".join(problems))

    def with_dev_secret(self) -> Settings:
        """Outside production, generate a secret key once and keep it in the data dir."""
        if self.secret_key or self.is_production:
            return self
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return self.model_copy(update={"secret_key": path.read_text().strip()})

    @property
    def jwt_secret(self) -> str:
        if not self.secret_key:
            raise ConfigError("SECRET_KEY is not set")
        return self.secret_key
