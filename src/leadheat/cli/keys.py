"""``leadheat keys``: API keys for machines. A key's secret is printed once, when it is
created, and never again."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leadheat.cli.options import JsonOption
from leadheat.cli.output import emit, err, listing, out
from leadheat.cli.state import ACTOR, open_leadheat
from leadheat.service import LeadheatError
from leadheat.store.keys import normalise_origin
from leadheat.times import isoformat

keys_app = typer.Typer(help="API keys for machines: create, list, revoke.", no_args_is_help=True)


def _origins(values: list[str] | None) -> list[str]:
    """``--origin`` values as browsers send them, or a usage error naming the bad one."""
    try:
        return [normalise_origin(v) for v in values or []]
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@keys_app.command("create")
def keys_create(
    name: str,
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="ingest (collection only), read or admin; repeatable."),
    ],
    public: Annotated[
        bool,
        typer.Option(
            "--public",
            help="A publishable key for web pages (with --scope ingest alone): it only "
            "collects, and may not change what trusted sources set (SECURITY.md).",
        ),
    ] = False,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin",
            callback=_origins,
            help="A web origin (scheme://host[:port], e.g. https://www.acme.com) a public "
            "key is accepted from; repeatable. Browsers on any other origin are refused.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key; it is printed once and cannot be shown again."""
    if public and set(scope) != {"ingest"}:
        raise typer.BadParameter(
            f"a public key only collects: give --scope ingest alone (not {', '.join(scope)})",
            param_hint="'--public'",
        )
    if origin and not public:
        raise typer.BadParameter(
            "origins are for public keys: add --public", param_hint="'--origin'"
        )
    key, info = open_leadheat().create_key(
        name, scope, public=public, origins=origin or [], actor=ACTOR
    )
    if as_json:
        emit(
            {
                "key": key,
                "prefix": info.prefix,
                "name": info.name,
                "scopes": sorted(info.scopes),
                "public": info.public,
                "origins": list(info.origins),
            }
        )
        return
    out.print(key)
    kind = "public key" if info.public else "key"
    err.print(
        f"{kind} {info.prefix} ({', '.join(sorted(info.scopes))}) for {name!r}: store it now, "
        "it is not shown again"
    )
    if info.public and not info.origins:
        err.print(
            "no --origin: browsers (requests with an Origin header) are refused with this key"
        )


@keys_app.command("list")
def keys_list(as_json: JsonOption = False) -> None:
    """Every key (never the secret): prefix, name, scopes, public or secret and its origins,
    created and revoked."""
    keys = open_leadheat().keys()
    data: list[dict[str, Any]] = [
        {
            "prefix": k.prefix,
            "name": k.name,
            "scopes": sorted(k.scopes),
            "public": k.public,
            "origins": list(k.origins),
            "created_at": isoformat(k.created_at),
            "revoked_at": isoformat(k.revoked_at),
        }
        for k in keys
    ]
    listing(
        data,
        as_json,
        ("prefix", "name", "scopes", "kind", "origins", "created", "revoked"),
        lambda item: (
            item["prefix"],
            item["name"],
            ",".join(item["scopes"]),
            "public" if item["public"] else "secret",
            " ".join(item["origins"]),
            item["created_at"],
            item["revoked_at"] or "",
        ),
    )


@keys_app.command("revoke")
def keys_revoke(prefix_or_name: str) -> None:
    """Revoke keys by prefix (the 8 characters after lh_) or by name."""
    count = open_leadheat().revoke_key(prefix_or_name, actor=ACTOR)
    if not count:
        raise LeadheatError(f"no active key with prefix or name {prefix_or_name!r}")
    out.print(f"revoked {count} key(s)")
