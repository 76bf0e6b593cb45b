"""The `gatehouse` command: operator tasks and the LMS simulator."""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import click

from . import storage
from .lti.constants import is_service_scope
from .settings import ConfigError
from .storage import StorageError, open_store


class SimulatorChoice(click.Choice):
    """A choice among the simulator's names (profiles, faults), read when first needed.

    The simulator is imported only by `gatehouse simulate`, so `gatehouse migrate` and the other
    commands never load it: the list is looked up when click parses or documents the option.
    """

    def __init__(self, name: str) -> None:
        self.name_in_simulator = name
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from . import simulator

        names = getattr(simulator, self.name_in_simulator)
        # PROFILES keeps its own order; FAULTS is a set, listed by name.
        return tuple(sorted(names)) if isinstance(names, frozenset | set) else tuple(names)

    @choices.setter
    def choices(self, value: object) -> None:
        """Ignore click.Choice's own assignment: the simulator holds the list."""


def _store(migrate: bool = True):
    """Open the database DATABASE_URL names (as the app does), migrated unless asked not to."""
    try:
        # Looked up at call time: the default SQLite file is wherever the app puts it.
        store = open_store(os.environ.get("DATABASE_URL"), storage.INSTANCE_PATH)
        if migrate:
            store.migrate()
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    context = click.get_current_context(silent=True)
    if context is not None:  # a PostgreSQL pool must not outlive the command
        context.call_on_close(store.close)
    return store


def _sealer(store=None):
    """Return the sealer GATEHOUSE_ENCRYPTION_KEY describes; with a store, after checking it as
    start-up does (its sealed secrets open; plain ones are sealed when a key is set)."""
    from .domain.sealing import Sealer, SealError, seal_at_rest

    try:
        sealer = Sealer.from_value(os.environ.get("GATEHOUSE_ENCRYPTION_KEY"))
        if store is not None:
            seal_at_rest(store, sealer)
    except SealError as exc:
        raise click.ClickException(str(exc)) from None
    return sealer


@click.group()
def main() -> None:
    """Gatehouse: LTI 1.3 Dynamic Registration for your tool."""


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema, listing the migrations applied."""
    store = _store(migrate=False)
    applied = store.migrate()
    if not applied:
        click.echo(f"The schema of {store.location} is up to date.")
        return
    plural = "s" if len(applied) > 1 else ""
    click.echo(f"Applied {len(applied)} migration{plural} to {store.location}:")
    for name in applied:
        click.echo(f"  {name}")


@main.command("export")
@click.option(
    "--include-secrets",
    is_flag=True,
    help="Also write the tool's private keys (keep the file safe).",
)
@click.option(
    "-o",
    "--output",
    type=click.File("w"),
    default="-",
    show_default=True,
    help="Where to write the JSON.",
)
def export_command(include_secrets: bool, output) -> None:
    """Write platforms, deployments, keys and registrations as JSON."""
    import json

    from .domain.portability import export_data

    store = _store()
    sealer = _sealer(store)
    document = export_data(store, include_secrets, sealer)
    json.dump(document, output, indent=2, sort_keys=True)
    output.write("\n")
    counts = ", ".join(f"{len(rows)} {name}" for name, rows in document["tables"].items())
    click.echo(
        f"Exported {counts}"
        + (
            " (private keys sealed: importing needs GATEHOUSE_ENCRYPTION_KEY)"
            if document["secretsSealed"]
            else ""
        )
        + ("" if include_secrets else " (public keys only; see --include-secrets)"),
        err=True,
    )


@main.command("import")
@click.argument("source", type=click.File("r"))
def import_command(source) -> None:
    """Load a `gatehouse export` file into this database (same ids are replaced)."""
    import json

    from .domain.portability import ExportFormatError, import_data
    from .domain.sealing import SealError

    try:
        document = json.load(source)
    except ValueError as exc:
        raise click.ClickException(f"the file is not JSON: {exc}") from None
    try:
        store = _store()
        imported = import_data(store, document, _sealer(store))
    except (ExportFormatError, SealError) as exc:
        raise click.ClickException(str(exc)) from None
    counts = imported.counts
    click.echo("Imported " + ", ".join(f"{n} {name}" for name, n in counts.items()) + ".")
    if not counts["tool_keys"]:
        click.echo(
            "The export had no private keys: this database keeps (or makes) its own "
            "tool key, and LMSes pick it up from /lti/keys."
        )
        return
    if imported.current_kid is None:
        click.echo(
            "Every key in the export was already rotated out: this database's current "
            "key keeps signing."
        )
        return
    click.echo(f"Current signing key: {imported.current_kid} (the export's).")
    for kid, retire_at in imported.retired:
        click.echo(
            f"This database's own key {kid} stays published until {retire_at}, then retires."
        )
    click.echo(
        "Running workers publish the keys within 30 seconds and sign with the current one "
        "within a minute, once every worker publishes it."
    )


@main.command("check-config")
def check_config() -> None:
    """Validate the configuration file and environment, as start-up does."""
    from .domain.sealing import ENV, Sealer, SealError
    from .settings import load_settings

    problems: list[str] = []
    try:
        settings = load_settings()
    except ConfigError as exc:
        problems += exc.problems
    try:
        Sealer.from_value(os.environ.get(ENV))
    except SealError as exc:
        problems.append(str(exc))
    if problems:
        raise click.ClickException(f"configuration refused: {ConfigError(*problems)}")
    click.echo(f"Configuration is valid (tool.name = {settings.tool.name!r}).")


@main.group()
def user() -> None:
    """Manage the accounts that approve registrations (the sign-in gate)."""


def _password_options(command):
    """Add --password and --password-stdin to a command that sets a password."""
    command = click.option(
        "--password-stdin",
        "password_stdin",
        is_flag=True,
        help="Read the password from standard input (scripts, no terminal).",
    )(command)
    return click.option(
        "--password",
        help="The password; asked for (hidden, twice) on a terminal when left out.",
    )(command)


def _password(password: str | None, from_stdin: bool, prompt: str) -> str:
    """Return the password given, read from stdin, or asked for on the terminal; check its length.

    Without a terminal, asking would end in getpass's warning and "Aborted!": say what to use.
    """
    from .domain.accounts import MIN_PASSWORD_LENGTH

    if password is not None and from_stdin:
        raise click.UsageError("use either --password or --password-stdin, not both")
    if from_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    elif password is None:
        if not sys.stdin.isatty():
            raise click.UsageError(
                "no terminal to ask for the password: use --password PASSWORD, or "
                "--password-stdin and pipe it in"
            )
        password = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.BadParameter(
            f"use at least {MIN_PASSWORD_LENGTH} characters", param_hint="--password"
        )
    return password


@user.command("create")
@click.option("--email", required=True, help="The account's e-mail address (its sign-in name).")
@_password_options
@click.option("--name", help="The person's name, shown as the approver.")
@click.option("--owner", is_flag=True, help="May also sign in to the owner console.")
def user_create(
    email: str, password: str | None, password_stdin: bool, name: str | None, owner: bool
) -> None:
    """Create an account for the sign-in gate (and, with --owner, the owner console)."""
    from .settings import EMAIL_RE
    from .storage import AccountExists
    from .web.login import hash_password

    if not EMAIL_RE.match(email):
        raise click.BadParameter(f"{email!r} is not an e-mail address", param_hint="--email")
    password = _password(password, password_stdin, "Password")
    store = _store()
    try:
        account = store.create_account(email, name, hash_password(password))
    except AccountExists:
        raise click.ClickException(f"an account with the e-mail {email} already exists") from None
    if owner:
        store.set_owner(account.id, True)
    store.audit(
        "command line",
        "account.created",
        "account",
        account.id,
        {"email": account.email, "owner": owner},
    )
    kind = "owner account" if owner else "account"
    click.echo(f"Created {kind} {account.email} ({account.id}).")


@user.command("set-password")
@click.option("--email", required=True, help="The account's e-mail address.")
@_password_options
def user_set_password(email: str, password: str | None, password_stdin: bool) -> None:
    """Change an account's password; every session it has (console, sign-in gate) ends."""
    from .web.login import hash_password

    store = _store()
    account = store.find_account_by_email(email)
    if account is None:
        raise click.ClickException(f"no account with the e-mail {email}")
    password = _password(password, password_stdin, "New password")
    store.set_password(account.id, hash_password(password))
    store.audit(
        "command line", "account.password_changed", "account", account.id, {"email": account.email}
    )
    click.echo(f"Changed the password of {account.email}; its sessions have ended.")


@main.group("api-key")
def api_key() -> None:
    """Manage bearer keys for the /api and /admin endpoints."""


@api_key.command("create")
@click.option("--name", required=True, help="What the key is for, e.g. the back end using it.")
def api_key_create(name: str) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from .domain import apikeys

    store = _store()
    record, full = apikeys.create(store, name)
    store.audit("command line", "api_key.created", "api_key", record.id, {"name": name})
    click.echo(f"Created API key {record.id} ({name}). Store it now; it is not shown again:")
    click.echo(full)


@api_key.command("list")
def api_key_list() -> None:
    """List keys (never their secrets)."""
    keys, _total = _store().list_api_keys()
    for key in keys:
        state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
        used = key.last_used_at or "never used"
        click.echo(f"{key.id}  {key.name}  created {key.created_at}  {used}  {state}")


@api_key.command("revoke")
@click.argument("key_id")
def api_key_revoke(key_id: str) -> None:
    """Revoke a key at once."""
    store = _store()
    if not store.revoke_api_key(key_id):
        raise click.ClickException(f"no active API key with id {key_id}")
    store.audit("command line", "api_key.revoked", "api_key", key_id)
    click.echo(f"Revoked API key {key_id}.")


@main.group()
def keys() -> None:
    """Manage the tool's signing keys (served at /lti/keys)."""


@keys.command("list")
def keys_list() -> None:
    """List the tool's keys, newest first."""
    for key in _store().list_tool_keys():
        state = f"retires {key.retire_at}" if key.retire_at else "current"
        click.echo(f"{key.kid}  created {key.created_at}  {state}")


@keys.command("rotate")
@click.option(
    "--grace-hours",
    default=72,
    show_default=True,
    type=click.IntRange(min=0),
    help="How long the old keys stay published.",
)
def keys_rotate(grace_hours: int) -> None:
    """Add a new signing key; keep publishing the old ones for the grace period."""
    from .domain.keys import generate_sealed, rotate

    store = _store()
    sealer = _sealer(store)
    store.ensure_tool_key(generate_sealed(sealer))
    kid, old = rotate(store, timedelta(hours=grace_hours), sealer)
    click.echo(f"New current key: {kid}")
    for retired in old:
        click.echo(f"Still published for {grace_hours} h, then retired: {retired}")
    click.echo(
        "Running workers publish the new key within 30 seconds and sign with it within a "
        "minute, once every worker publishes it."
    )


@keys.command("new-encryption-key")
def keys_new_encryption_key() -> None:
    """Print a new key for GATEHOUSE_ENCRYPTION_KEY (nothing is stored)."""
    from .domain.sealing import key_id, new_key

    key = new_key()
    click.echo(key)
    click.echo(
        f"Key id {key_id(key)}. Set it as GATEHOUSE_ENCRYPTION_KEY and keep a copy apart from "
        "the database: without it, the sealed private keys and secrets cannot be opened. To "
        'replace a key, set GATEHOUSE_ENCRYPTION_KEY="<new key>,<old key>" and run '
        "`gatehouse keys rotate-encryption`.",
        err=True,
    )


@keys.command("rotate-encryption")
def keys_rotate_encryption() -> None:
    """Re-seal every stored secret under the first key of GATEHOUSE_ENCRYPTION_KEY."""
    from .domain.sealing import SealError, rotate_encryption

    store, sealer = _store(), _sealer()
    try:  # one transaction: a secret that does not open leaves every other one as it was
        changed = rotate_encryption(store, sealer)
    except SealError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Re-sealed {changed} stored secrets under key id {sealer.current}.")
    if len(sealer.key_ids) > 1:
        click.echo(
            "Every secret now opens with the new key alone: once every instance runs with it, "
            "drop the old key from GATEHOUSE_ENCRYPTION_KEY."
        )


@main.command()
@click.option(
    "--profile",
    "profile",
    required=True,
    type=SimulatorChoice("PROFILES"),
    help="Which LMS to behave like.",
)
@click.option(
    "--url",
    required=True,
    help="Gatehouse's registration URL, e.g. http://127.0.0.1:8000/lti/register",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Loopback address the simulated LMS listens on.",
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the tool.")
@click.option(
    "--skip-store-check",
    is_flag=True,
    help="Do not compare with the local database (Gatehouse runs elsewhere).",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    type=SimulatorChoice("FAULTS"),
    help="Make the LMS misbehave this way, to see the page an admin would get.",
)
@click.option(
    "--launch",
    "then_launch",
    is_flag=True,
    help="After registering, launch the tool through the LMS's login flow.",
)
def simulate(
    profile: str,
    url: str,
    host: str,
    timeout: float,
    skip_store_check: bool,
    faults: tuple[str, ...],
    then_launch: bool,
) -> None:
    """Act as an LMS on loopback and run one Dynamic Registration against Gatehouse."""
    from .simulator import Simulator

    try:
        sim = Simulator(profile=profile, host=host, faults=faults, delay=timeout + 1)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with sim:
        report = sim.register(url, timeout=timeout)
        problems = [] if skip_store_check or not report.ok else _compare_with_store(report)
        click.echo(report.render())
        for problem in problems:
            click.echo(f"  stored platform: {problem}")
        if then_launch and report.ok:
            problems += _launch(sim, report.client_id, timeout)
    if report.ok and not problems:
        if not skip_store_check:
            click.echo("Stored platform matches what the LMS granted.")
        sys.exit(0)
    sys.exit(1)


def _launch(sim, client_id: str, timeout: float) -> list[str]:
    """Launch the registered tool as a user of the LMS; print the hops and where it ended."""
    from .simulator.launch import verdict

    result = sim.launch(client_id, timeout=timeout)
    click.echo("\nLaunch:")
    for n, step in enumerate(result.steps, 1):
        click.echo(f"  {n}. {step}")
    ok, summary = verdict(result)
    click.echo(f"  {summary}")
    click.echo("PASS" if ok else "FAIL")
    return [] if ok else [summary]


def _compare_with_store(report) -> list[str]:
    store = _store()
    platform = store.find_platform(report.issuer, report.client_id)
    if platform is None:
        return [
            f"no platform with issuer {report.issuer} and client_id {report.client_id} in "
            f"{store.location} (is Gatehouse using another DATABASE_URL? use --skip-store-check)"
        ]
    problems = []
    if report.deployment_id:
        ids = {d.deployment_id for d in store.list_deployments(platform.id)}
        if report.deployment_id not in ids:
            problems.append(f"deployment {report.deployment_id} missing (stored: {sorted(ids)})")
    # The LMS's answer may claim `openid` (Canvas does); Gatehouse keeps service scopes only.
    granted = sorted(s for s in report.granted_scopes if is_service_scope(s))
    if sorted(platform.scopes) != granted:
        problems.append(f"scopes {sorted(platform.scopes)} differ from granted {granted}")
    return problems


if __name__ == "__main__":  # pragma: no cover
    main()
