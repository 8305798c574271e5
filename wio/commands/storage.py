"""Where the bytes live: nodes (S3 backends) and roots (buckets on them that hold workspaces)."""
from __future__ import annotations

import click

from wio.commands.core import CliState, WioGroup, busy, pass_state, q
from wio.commands.output import emit, print_table, short_time

__all__ = ["register_commands"]


@click.group(cls=WioGroup)
def node():
    """Storage nodes: the S3-compatible servers behind wio (MinIO, SeaweedFS, AWS S3 …).

    \b
    Examples:
      wio node add nas1 --endpoint http://nas1.lab:9000 --access-key wio-service
      wio node ls
      wio node rm nas1 --yes
    """


@node.command("add")
@click.argument("name")
@click.option("--endpoint", required=True, metavar="URL", help="The node's S3 endpoint.")
@click.option("--access-key", required=True, help="The service account wio signs with on this node.")
@click.option("--secret-key", prompt=True, hide_input=True,
              help="Its secret (asked for when not given, so it stays out of your shell history).")
@click.option("--region", default="us-east-1", show_default=True)
@pass_state
def node_add(state: CliState, name: str, endpoint: str, access_key: str, secret_key: str, region: str):
    """Register a node; wio checks that it answers with these credentials. You own it."""
    body = {"name": name, "endpoint": endpoint, "access_key": access_key, "secret_key": secret_key, "region": region}
    api = state.client()
    with busy(f"checking {endpoint}"):
        created = api.call("POST", "/nodes", body)
    emit(state, created, lambda n: click.echo(f"Registered node {n['name']} at {n['endpoint']}."))


@node.command("ls")
@pass_state
def node_ls(state: CliState):
    """List the nodes you own (administrators: all)."""
    nodes = state.client().call("GET", "/nodes")["nodes"]
    emit(state, {"nodes": nodes}, lambda d: print_table(d["nodes"], [
        ("name", "name"), ("endpoint", "endpoint"), ("region", "region"), ("owner", "owner"),
        ("created", lambda n: short_time(n.get("created_at")))]))


def _rm_command(group: click.Group, collection: str, help_text: str, question: str, done: str) -> None:
    """``wio <group> rm NAME [--yes]``: DELETE /{collection}/NAME once confirmed; ``question`` and ``done``
    are formatted with the name."""
    @group.command("rm", help=help_text)
    @click.argument("name")
    @click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation.")
    @pass_state
    def rm(state: CliState, name: str, yes: bool) -> None:
        if not yes:
            click.confirm(question.format(name=name), abort=True, err=True)
        state.client().call("DELETE", f"/{collection}/{q(name)}")
        emit(state, {"deleted": name}, lambda d: click.echo(done.format(name=name)))


_rm_command(node, "nodes", "Forget a node, with its roots and their workspaces (the data on the node is left alone).",
            "Forget node '{name}' and every root and workspace on it? (the data stays on the node)",
            "Removed node {name}.")


@click.group(cls=WioGroup)
def root():
    """Roots: a bucket (and prefix) on a node where workspaces are placed.

    \b
    Types:
      private    wio lays out {prefix}/{owner}/{workspace}/ for new workspaces
      public     the same, for workspaces every user can read
      unmanaged  existing data, mapped in as-is with 'wio import'

    \b
    Examples:
      wio root add lab-private --node nas1 --bucket wio --prefix private/ --type private
      wio root add archive --node nas1 --bucket archive --type unmanaged
      wio root ls
      wio root rm archive --yes
    """


@root.command("add")
@click.argument("name")
@click.option("--node", "node_name", required=True, help="The node holding the bucket.")
@click.option("--bucket", required=True, help="The bucket on the node (created when missing).")
@click.option("--prefix", default="", help="A key prefix inside the bucket.")
@click.option("--type", "kind", type=click.Choice(["private", "public", "unmanaged"]), default="private",
              show_default=True)
@pass_state
def root_add(state: CliState, name: str, node_name: str, bucket: str, prefix: str, kind: str):
    """Create a root on a node you own (or as an administrator)."""
    body = {"name": name, "node": node_name, "bucket": bucket, "prefix": prefix, "type": kind}
    created = state.client().call("POST", "/roots", body)
    emit(state, created, lambda r: click.echo(
        f"Created {r['type']} root {r['name']} on {r['node']}: {r['bucket']}/{r.get('prefix') or ''}"))


@root.command("ls")
@pass_state
def root_ls(state: CliState):
    """List the roots."""
    roots = state.client().call("GET", "/roots")["roots"]
    emit(state, {"roots": roots}, lambda d: print_table(d["roots"], [
        ("name", "name"), ("type", "type"), ("node", "node"), ("bucket", "bucket"), ("prefix", "prefix"),
        ("created", lambda r: short_time(r.get("created_at")))]))


_rm_command(root, "roots", "Forget a root that holds no workspaces (the bucket and its data stay on the node).",
            "Forget root '{name}'? (refused while it holds workspaces; its bucket stays on the node)",
            "Removed root {name}; its bucket and data stay on the node.")


def register_commands(cli: click.Group) -> None:
    for command in (node, root):
        cli.add_command(command)
