"""Groups: a named set of users that can be granted on workspaces."""
from __future__ import annotations


from aiohttp import web
from sqlalchemy import select

from admin_api.context import caller, field, find, insert_unique, iso, json_body, manages, mutation, read_session
from admin_api.errors import ApiError
from policy.models import Group, GroupMember, Share, User, Workspace
from policy.names import group_name_error

__all__ = ["routes"]

routes = web.RouteTableDef()


async def _members(session, group: Group) -> list[str]:
    return sorted((await session.scalars(select(User.username).join(GroupMember, GroupMember.user_id == User.id)
                                         .where(GroupMember.group_id == group.id))).all())


async def _group_for_change(session, user: User, name: str) -> Group:
    group = await find(session, Group.name, name, ApiError("NoSuchGroup", f"no group named '{name}'"))
    if not manages(user, group.owner_id):
        raise ApiError("Forbidden", "only the group's owner or an administrator can change it")
    return group


@routes.post("/api/v1/groups")
async def create_group(request: web.Request) -> web.Response:
    name = field(await json_body(request), "name", str)
    error = group_name_error(name)
    if error is not None:
        raise ApiError("InvalidName", error)
    async with mutation(request.app) as (session, change):
        user = await caller(request, session)
        group = Group(name=name, owner=user, owner_id=user.id)
        await insert_unique(session, group, ApiError("GroupExists", f"a group named '{name}' already exists"))
        change.groups.add(name)
    return web.json_response({"name": name, "owner": user.username, "members": [],
                              "created_at": iso(group.created_at)}, status=201)


@routes.get("/api/v1/groups")
async def list_groups(request: web.Request) -> web.Response:
    async with read_session(request.app) as session:
        user = await caller(request, session)
        query = select(Group).order_by(Group.name)
        if not user.is_admin:
            mine = select(GroupMember.group_id).where(GroupMember.user_id == user.id)
            query = query.where((Group.owner_id == user.id) | Group.id.in_(mine))
        groups = (await session.scalars(query)).unique().all()
        out = [{"name": g.name, "owner": g.owner.username, "members": await _members(session, g)} for g in groups]
    return web.json_response({"groups": out})


@routes.post("/api/v1/groups/{name}/members")
async def add_member(request: web.Request) -> web.Response:
    username = field(await json_body(request), "user", str)
    async with mutation(request.app) as (session, change):
        group = await _group_for_change(session, await caller(request, session), request.match_info["name"])
        member = await find(session, User.username, username, ApiError("NoSuchUser", f"no user named '{username}'"))
        row = await session.get(GroupMember, (group.id, member.id))
        if row is None:
            session.add(GroupMember(group_id=group.id, user_id=member.id))
        else:
            row.source = "wio"  # added by hand: a provider sync must no longer remove it
        change.users.add(username)
        await session.flush()
        members = await _members(session, group)
    return web.json_response({"name": group.name, "owner": group.owner.username, "members": members}, status=201)


@routes.delete("/api/v1/groups/{name}/members/{user}")
async def remove_member(request: web.Request) -> web.Response:
    async with mutation(request.app) as (session, change):
        group = await _group_for_change(session, await caller(request, session), request.match_info["name"])
        member = await session.scalar(select(User).where(User.username == request.match_info["user"]))
        row = await session.get(GroupMember, (group.id, member.id)) if member else None
        if row is None:
            raise ApiError("NoSuchMember")
        await session.delete(row)
        change.users.add(member.username)
    return web.Response(status=204)


@routes.delete("/api/v1/groups/{name}")
async def delete_group(request: web.Request) -> web.Response:
    async with mutation(request.app) as (session, change):
        group = await _group_for_change(session, await caller(request, session), request.match_info["name"])
        change.users.update(await _members(session, group))
        change.workspaces.update((await session.scalars(
            select(Workspace.name).join(Share, Share.workspace_id == Workspace.id)
            .where(Share.group_id == group.id))).all())
        change.groups.add(group.name)
        await session.delete(group)
    return web.Response(status=204)
