"""Settings, built once at start from `SAFEROOM_*` variables and CLI flags.

Nothing reads the environment at import time; placeholders and malformed keys refuse to start.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from saferoom.errors import ConfigurationError

PLACEHOLDERS = frozenset(
    {"changethis", "changeme", "change-me", "secret", "password", "admin", "token", "test", "xxx"}
)
MIN_ADMIN_TOKEN_CHARS = 24


class _EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAFEROOM_", extra="ignore")

    data_dir: Path | None = None
    master_key: SecretStr | None = None
    admin_token: SecretStr | None = None
    max_upload_bytes: int = Field(default=4 * 1024**3, gt=0)
    max_json_bytes: int = Field(default=8 * 1024**2, gt=0)
    checkpoint_every: int = Field(default=256, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the mapping handed to load_settings counts, so tests and the CLI see one source.
        return (init_settings,)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    master_key: bytes | None
    admin_token: str | None
    max_upload_bytes: int
    max_json_bytes: int
    checkpoint_every: int

    def __repr__(self) -> str:  # never print secrets
        return f"Settings(data_dir={self.data_dir!s}, max_upload_bytes={self.max_upload_bytes})"


def decode_master_key(text: str) -> bytes:
    """A master key is 32 random bytes given as base64 or hex; anything else is refused."""
    text = text.strip()
    key: bytes | None = None
    if len(text) == 64:
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = None
    if key is None:
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != 32:
        raise ConfigurationError("SAFEROOM_MASTER_KEY must be 32 bytes in base64 or hex")
    if len(set(key)) < 8:
        raise ConfigurationError("SAFEROOM_MASTER_KEY looks like a placeholder, not a random key")
    return key


def load_settings(
    environ: Mapping[str, str], overrides: Mapping[str, object] | None = None
) -> Settings:
    """Build the settings from a mapping (the process environment in production)."""
    env = {k: v for k, v in environ.items() if k.startswith("SAFEROOM_")}
    try:
        values: dict[str, object] = {k.removeprefix("SAFEROOM_").lower(): v for k, v in env.items()}
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        raw = _EnvSettings.model_validate(values)
    except ValidationError as exc:
        names = ", ".join(str(e["loc"][0]).upper() for e in exc.errors() if e["loc"])
        raise ConfigurationError(f"invalid settings: SAFEROOM_{names}") from None
    if raw.data_dir is None:
        raise ConfigurationError("no data directory: pass --data-dir or set SAFEROOM_DATA_DIR")
    admin_token = raw.admin_token.get_secret_value() if raw.admin_token else None
    if admin_token is not None and (
        admin_token.strip().lower() in PLACEHOLDERS or len(admin_token) < MIN_ADMIN_TOKEN_CHARS
    ):
            raise ConfigurationError(
                f"SAFEROOM_ADMIN_TOKEN must be a random string of at least "
                f"{MIN_ADMIN_TOKEN_CHARS} characters, not a placeholder"
            )
    master_key = decode_master_key(raw.master_key.get_secret_value()) if raw.master_key else None
    return Settings(
        data_dir=raw.data_dir.resolve(),
        master_key=master_key,
        admin_token=admin_token,
        max_upload_bytes=raw.max_upload_bytes,
        max_json_bytes=raw.max_json_bytes,
        checkpoint_every=raw.checkpoint_every,
    )
