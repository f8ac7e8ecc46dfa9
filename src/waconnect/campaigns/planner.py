"""Who in the audience gets what: the one decision the campaign loop and the dry run share.

The audience is read in chunks ordered by position (a profile id for a segment, the place in an
uploaded list), after a cursor: a 1,000,000-recipient campaign never sits in memory. Each member
gets exactly one decision, in this order: no phone / invalid phone / unknown identity,
duplicate phone, unsubscribed, frequency-capped, control group, variant, missing variable —
else a message.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from waconnect.campaigns.models import (
    Campaign,
    CampaignListEntry,
    CampaignRecipient,
    CampaignVariant,
)
from waconnect.messaging import pacing
from waconnect.messaging.models import Contact
from waconnect.messaging.service import template_definition
from waconnect.phones import InvalidPhone, normalize_phone
from waconnect.profiles.compiler import PROFILES
from waconnect.profiles.compiler import ids_query as segment_ids_query
from waconnect.profiles.models import Profile
from waconnect.profiles.segments import compile_definition, get_segment
from waconnect.profiles.service import dialect_of
from waconnect.templates.models import Template
from waconnect.templates.personalization import MissingVariable, Personalizer, compile_mapping
from waconnect.workspaces.schemas import WorkspaceSettings

_IN_CLAUSE = 1000  # a whole default chunk in one IN list (SQLite takes 32,766 values)
# Members decided between two turns of the event loop: a chunk's CPU work is spread out, so
# the dispatcher's writes, which hold SQLite's one writer turn, are not kept waiting behind it.
_DECIDE_SLICE = 100


@dataclass(slots=True)
class Member:
    """One member of the audience as read: what the decision needs."""

    position: int
    profile_id: int | None = None
    identity: str | None = None
    phone: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    contact_id: int | None = None
    problem: str | None = None  # no_phone | invalid_phone | unknown_identity
    detail: str | None = None


@dataclass(slots=True)
class Decision:
    member: Member
    kind: str  # message | skipped | control
    variant: int | None = None
    reason: str | None = None
    detail: str | None = None
    components: list[dict[str, Any]] | None = None


@dataclass
class Variant:
    number: int
    name: str
    template_id: int
    percent: float | None
    match_value: str | None
    personalizer: Personalizer


def quick_reply_mapping(spec: dict[str, Any]) -> dict[str, Any]:
    """The campaign's quick-reply payloads as literal entries of the personalization mapping."""
    return {
        f"buttons.{index}.payload": {"literal": payload}
        for index, payload in (spec.get("quick_reply_payloads") or {}).items()
    }


async def load_variants(session: AsyncSession, campaign: Campaign) -> list[Variant]:
    rows = await session.scalars(
        select(CampaignVariant)
        .where(CampaignVariant.campaign_id == campaign.id)
        .order_by(CampaignVariant.number)
    )
    extra = quick_reply_mapping(campaign.spec)
    variants = []
    for row in rows:
        template = await session.get(Template, row.template_id)
        if template is None:
            raise LookupError(f"template {row.template_id} of variant {row.name} was deleted")
        personalizer = compile_mapping(
            template_definition(template), {**row.variables, **_only_known(template, extra)}
        )
        variants.append(
            Variant(
                row.number, row.name, row.template_id, row.percent, row.match_value, personalizer
            )
        )
    return variants


def _only_known(template: Template, extra: dict[str, Any]) -> dict[str, Any]:
    """Quick-reply payloads apply to the variants whose template has that quick reply."""
    from waconnect.templates.personalization import template_slots

    keys = {slot.key for slot in template_slots(template_definition(template))}
    return {key: value for key, value in extra.items() if key in keys}


def _fraction(campaign_id: int, position: int, salt: str) -> float:
    """A stable uniform number in [0, 1) per recipient: the same split after any restart."""
    digest = hashlib.blake2b(f"{campaign_id}:{position}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Decider:
    """Decides each member's fate; ``seen`` holds phones already reached by this campaign."""

    def __init__(
        self,
        campaign: Campaign,
        variants: Sequence[Variant],
        settings: WorkspaceSettings,
    ) -> None:
        self.campaign = campaign
        self.variants = list(variants)
        self.settings = settings
        self.by_attribute: str | None = (campaign.spec.get("by_property") or {}).get("attribute")

    def pick_variant(self, member: Member) -> Variant | None:
        if self.by_attribute is not None:
            value = member.attributes.get(self.by_attribute)
            key = str(value).strip() if value is not None else None
            default = None
            for variant in self.variants:
                if variant.match_value is None:
                    default = variant
                elif key is not None and variant.match_value == key:
                    return variant
            return default
        if len(self.variants) == 1:
            return self.variants[0]
        point = _fraction(self.campaign.id, member.position, "variant") * 100
        percents = [v.percent or 100 / len(self.variants) for v in self.variants]
        total = 0.0
        for variant, percent in zip(self.variants, percents, strict=True):
            total += percent
            if point < total:
                return variant
        return self.variants[-1]

    def decide(
        self,
        members: Iterable[Member],
        seen: Callable[[str], bool],
        subscription: dict[str, str],
        capped: set[str],
    ) -> list[Decision]:
        decisions = []
        for member in members:
            decisions.append(self._one(member, seen, subscription, capped))
        return decisions

    def _one(
        self,
        member: Member,
        seen: Callable[[str], bool],
        subscription: dict[str, str],
        capped: set[str],
    ) -> Decision:
        if member.problem is not None:
            return Decision(member, "skipped", reason=member.problem, detail=member.detail)
        phone = member.phone
        assert phone is not None
        if seen(phone):
            return Decision(member, "skipped", reason="duplicate_phone")
        state = subscription.get(phone, self.settings.new_contact_subscription)
        if state != "subscribed":
            return Decision(member, "skipped", reason="unsubscribed")
        if phone in capped:
            return Decision(member, "skipped", reason="capped")
        control = self.campaign.control_percent
        if control and _fraction(self.campaign.id, member.position, "control") * 100 < control:
            return Decision(member, "control")
        variant = self.pick_variant(member)
        if variant is None:
            value = member.attributes.get(self.by_attribute or "")
            detail = f"no template for {self.by_attribute}={value!r}"
            return Decision(member, "skipped", reason="no_variant", detail=detail)
        attributes = {"phone": phone, "identity": member.identity, **member.attributes}
        try:
            components = variant.personalizer.components(attributes)
        except MissingVariable as exc:
            return Decision(
                member, "skipped", variant=variant.number, reason="missing_variable", detail=exc.key
            )
        return Decision(member, "message", variant=variant.number, components=components)


# --- reading the audience -----------------------------------------------------------------------


class AudienceReader:
    """Reads the next chunk of a campaign's audience after a position."""

    def __init__(
        self,
        session: AsyncSession,
        campaign: Campaign,
        settings: WorkspaceSettings,
        segment: Any = None,
    ) -> None:
        """``segment``: the campaign's segment as an earlier reader compiled it, if any."""
        self.session = session
        self.campaign = campaign
        self.settings = settings
        self.segment: Any = segment

    async def next_chunk(
        self, after: int, size: int, now: datetime
    ) -> tuple[list[Member], int | None]:
        """The members after position ``after``, and the last position read (None: the end)."""
        if self.campaign.audience_kind == "segment":
            return await self._segment_chunk(after, size, now)
        return await self._list_chunk(after, size)

    async def _segment_chunk(
        self, after: int, size: int, now: datetime
    ) -> tuple[list[Member], int | None]:
        campaign = self.campaign
        if self.segment is None:
            assert campaign.segment_id is not None
            segment = await get_segment(self.session, campaign.workspace_id, campaign.segment_id)
            self.segment = await compile_definition(
                self.session, campaign.workspace_id, segment.definition
            )
        # The segment's own query, walked upwards by profile id: the cursor is the last id.
        ids_query = (
            segment_ids_query(self.segment, dialect_of(self.session), campaign.workspace_id, now)
            .order_by(None)
            .where(PROFILES.c.id > after)
            .order_by(PROFILES.c.id)
            .limit(size)
        )
        ids = list(await self.session.scalars(ids_query))
        if not ids:
            return [], None
        profiles = await self._profiles(Profile.id, ids)
        members = []
        for profile_id in ids:
            profile = profiles.get(profile_id)
            if profile is None:  # erased between the two reads
                continue
            members.append(_member(profile_id, profile))
        return members, ids[-1]

    async def _profiles(self, column: Any, keys: Sequence[Any]) -> dict[Any, Any]:
        found: dict[Any, Any] = {}
        for start in range(0, len(keys), _IN_CLAUSE):
            rows = await self.session.execute(
                select(
                    column,
                    Profile.id,
                    Profile.identity,
                    Profile.phone,
                    Profile.attributes,
                    Profile.timezone,
                ).where(
                    Profile.workspace_id == self.campaign.workspace_id,
                    Profile.erased_at.is_(None),
                    column.in_(keys[start : start + _IN_CLAUSE]),
                )
            )
            for row in rows.all():
                found[row[0]] = row
        return found

    async def _list_chunk(self, after: int, size: int) -> tuple[list[Member], int | None]:
        entries = list(
            (
                await self.session.execute(
                    select(CampaignListEntry.position, CampaignListEntry.value)
                    .where(
                        CampaignListEntry.campaign_id == self.campaign.id,
                        CampaignListEntry.position > after,
                    )
                    .order_by(CampaignListEntry.position)
                    .limit(size)
                )
            ).all()
        )
        if not entries:
            return [], None
        last = entries[-1][0]
        if self.campaign.audience_kind == "identities":
            profiles = await self._profiles(Profile.identity, [value for _p, value in entries])
            members = []
            for position, value in entries:
                profile = profiles.get(value)
                if profile is None:
                    members.append(
                        Member(position, identity=value, problem="unknown_identity", detail=value)
                    )
                else:
                    members.append(_member(position, profile))
            return members, last
        members, phones = [], []
        for position, value in entries:
            try:
                phone = normalize_phone(value, self.settings.default_country)
            except InvalidPhone as exc:
                members.append(Member(position, problem="invalid_phone", detail=f"{value}: {exc}"))
                continue
            members.append(Member(position, phone=phone))
            phones.append(phone)
        profiles = await self._profiles(Profile.phone, phones)
        for member in members:
            profile = profiles.get(member.phone)
            if profile is not None:
                member.profile_id = profile.id
                member.identity = profile.identity
                member.attributes = dict(profile.attributes or {})
                member.timezone = profile.timezone
        return members, last


def _member(position: int, profile: Any) -> Member:
    """From a row of ``AudienceReader._profiles``: unpacked by position, which is several times
    cheaper per member than the row's attribute lookups."""
    _key, profile_id, identity, phone, attributes, timezone = profile
    member = Member(
        position,
        profile_id=profile_id,
        identity=identity,
        phone=phone,
        attributes=attributes or {},  # the row's own dict, decoded for this read
        timezone=timezone,
    )
    if not phone:
        member.problem = "no_phone"
    return member


async def contacts_of(
    session: AsyncSession, workspace_id: int, phones: Sequence[str]
) -> dict[str, tuple[int, str]]:
    """phone -> (contact id, subscription) for the phones that have a contact."""
    found: dict[str, tuple[int, str]] = {}
    unique = sorted(set(phones))
    for start in range(0, len(unique), _IN_CLAUSE):
        rows = await session.execute(
            select(Contact.phone, Contact.id, Contact.subscription).where(
                Contact.workspace_id == workspace_id,
                Contact.phone.in_(unique[start : start + _IN_CLAUSE]),
            )
        )
        found.update({phone: (contact_id, state) for phone, contact_id, state in rows.all()})
    return found


async def phones_reached(
    session: AsyncSession, campaign_id: int, phones: Sequence[str]
) -> set[str]:
    """Phones that already have a recipient row in this campaign (any outcome)."""
    found: set[str] = set()
    unique = sorted(set(phones))
    for start in range(0, len(unique), _IN_CLAUSE):
        rows = await session.scalars(
            select(CampaignRecipient.phone).where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.phone.in_(unique[start : start + _IN_CLAUSE]),
            )
        )
        found.update(phone for phone in rows if phone)
    return found


async def decide_chunk(
    session: AsyncSession,
    decider: Decider,
    members: Sequence[Member],
    already: set[str],
    now: datetime,
) -> list[Decision]:
    """Decisions for one chunk; ``already`` are phones reached before it (updated in place)."""
    campaign = decider.campaign
    phones = [m.phone for m in members if m.phone and m.problem is None]
    contacts = await contacts_of(session, campaign.workspace_id, phones)
    subscription = {phone: state for phone, (_id, state) in contacts.items()}
    for member in members:
        if member.phone in contacts:
            member.contact_id = contacts[member.phone][0]
    capped = await pacing.capped_phones(
        session, campaign.workspace_id, phones, now, decider.settings.frequency_cap
    )

    def seen(phone: str) -> bool:
        if phone in already:
            return True
        already.add(phone)
        return False

    decisions: list[Decision] = []
    for start in range(0, len(members), _DECIDE_SLICE):
        if start:
            await asyncio.sleep(0)
        piece = members[start : start + _DECIDE_SLICE]
        decisions.extend(decider.decide(piece, seen, subscription, capped))
    return decisions
