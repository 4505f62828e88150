"""The team's written criteria for hot, warm and cold: TOML in, a validated ``Playbook`` out.

Every key is optional and defaults to DESIGN §2, so an empty file is a valid playbook. A
mistake is reported with the key path *and* the line it sits on, because the people who edit
playbooks are sales managers, not parsers.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache, cached_property
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from leadheat.scoring.conditions import Condition
from leadheat.scoring.patterns import Pattern, PatternError
from leadheat.times import TimeFormatError, format_duration, parse_duration

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

EvidenceKind = Literal["need", "budget", "timeline", "authority"]
EVIDENCE_KINDS: tuple[EvidenceKind, ...] = ("need", "budget", "timeline", "authority")
_HOT_REQUIRES: tuple[EvidenceKind, ...] = ("need", "budget", "timeline")


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError('write durations as a string such as "7d", "12h" or "90s"')
    try:
        return parse_duration(value)
    except TimeFormatError as error:
        raise ValueError(str(error)) from None


MAX_POINTS = 1_000_000
"""The most one event, or one fit rule, may be worth. More is a typo, and makes what a float
cannot hold: a fit of ``inf`` (no JSON), or heat whose forecast passes the year 9999."""
MIN_HEAT = 0.001
"""The lowest hot or warm heat: heat falls below a tinier one only after so many half-lives
that the forecast passes the year 9999 (an ``OverflowError`` when showing the lead)."""
MAX_HALF_LIFE = timedelta(days=3653)
"""The longest half-life, ten years: with :data:`MAX_POINTS` and :data:`MIN_HEAT` it keeps
every forecast ("hot until") inside what ``datetime`` holds."""


def _half_life(span: timedelta) -> timedelta:
    if span > MAX_HALF_LIFE:
        raise ValueError(
            f"{format_duration(span)} is longer than the longest half-life, "
            f"{format_duration(MAX_HALF_LIFE)} (ten years)"
        )
    return span


Duration = Annotated[timedelta, BeforeValidator(_duration)]
HalfLife = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_half_life)]
Scalar = str | int | float | bool


class _Section(BaseModel):
    """Every table of a playbook: unknown keys are mistakes, and so are ``nan`` and ``inf``
    (TOML allows both), which no threshold or point value can mean: a ``nan`` threshold
    silently fails every comparison, and ``inf`` points make heat infinite.

    Validators are built on first use (``defer_build``): parsing a playbook builds the one of
    :class:`Playbook`, which holds every section's, instead of each section building its own
    at import (a command that parses none, such as ``--help``, builds none)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


def _pattern(pattern: str | None) -> str | None:
    """Refuse a ``matches`` pattern that is not a regular expression or that the linear-time
    engine cannot run (:mod:`leadheat.scoring.patterns` says why), on the line it sits on."""
    if pattern is not None:
        try:
            Pattern(pattern)
        except PatternError as error:
            raise ValueError(str(error)) from None
    return pattern


PatternText = Annotated[str | None, AfterValidator(_pattern)]


class _ConditionSpec(_Section):
    matches: PatternText = None
    equals: Scalar | None = None
    one_of: list[Scalar] | None = None
    range: tuple[float, float] | None = None
    present: bool | None = None
    label: Annotated[str, AfterValidator(str.strip)] | None = Field(
        default=None, min_length=1, max_length=80
    )
    """What the team calls the rule ("Senior title", "Mid-size company"): explanations show
    it instead of the test."""

    @model_validator(mode="after")
    def _one_test(self) -> _ConditionSpec:
        given = [
            name
            for name in ("matches", "equals", "one_of", "range", "present")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of matches, equals, one_of, range, present"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"range: low {self.range[0]} is above high {self.range[1]}")
        return self

    def _condition(self, name: str) -> Condition:
        return Condition(
            name=name,
            equals=self.equals,
            one_of=tuple(self.one_of) if self.one_of is not None else None,
            range=self.range,
            matches=Pattern(self.matches) if self.matches is not None else None,
            present=self.present,
            label=self.label or None,
        )


class FitRule(_ConditionSpec):
    """Points for a lead attribute that marks the ideal customer (or disqualifies)."""

    field: str
    points: float = Field(default=0, ge=-MAX_POINTS, le=MAX_POINTS)
    disqualify: bool = False

    @cached_property
    def condition(self) -> Condition:
        return self._condition(self.field)


class SignalRule(_ConditionSpec):
    """Points for an event of this type whose property passes a test (e.g. the pricing page)."""

    property: str
    points: float = Field(ge=-MAX_POINTS, le=MAX_POINTS)
    """Negative points pull heat down (see :class:`Signal`)."""

    @cached_property
    def condition(self) -> Condition:
        return self._condition(self.property)


class Signal(_Section):
    """What one event type is worth; the first matching rule overrides ``points``.

    Negative points (``careers_view``, ``unsubscribe``) pull heat down and decay like any
    other; ``0`` carries no heat."""

    points: float = Field(default=0, ge=-MAX_POINTS, le=MAX_POINTS)
    half_life: HalfLife | None = None
    rules: list[SignalRule] = Field(default_factory=list)


class Decay(_Section):
    half_life: HalfLife = timedelta(days=7)


class Fit(_Section):
    qualified_at: float = 10
    rules: list[FitRule] = Field(default_factory=list)


class Evidence(_Section):
    """BANT evidence: how long it stays fresh and which property/attribute names carry it."""

    ttl: Duration = timedelta(days=90)
    need: list[str] = Field(default_factory=lambda: ["need"])
    budget: list[str] = Field(default_factory=lambda: ["budget"])
    timeline: list[str] = Field(default_factory=lambda: ["timeline"])
    authority: list[str] = Field(default_factory=lambda: ["authority"])


class Temperature(_Section):
    hot_heat: float = Field(default=20, ge=MIN_HEAT)
    warm_heat: float = Field(default=5, ge=MIN_HEAT)
    warm_window: Duration = timedelta(days=30)
    cold_after: Duration = timedelta(days=180)
    hot_requires: list[EvidenceKind] = Field(default_factory=lambda: list(_HOT_REQUIRES))
    churn_events: list[str] = Field(
        default_factory=lambda: ["trial_expired", "subscription_cancelled"]
    )
    hot_min_probability: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Temperature:
        if self.warm_heat > self.hot_heat:
            raise ValueError(f"warm_heat {self.warm_heat:g} is above hot_heat {self.hot_heat:g}")
        return self


_ACCOUNT_ROLES: tuple[tuple[str, str], ...] = (
    (
        "economic_buyer",
        r"(?i)\b(ceo|cfo|coo|cto|cio|cro|chief|founder|owner|president|vp|vice president|"
        r"head of|director)\b",
    ),
    ("champion", r"(?i)\b(manager|lead|principal|architect|senior)\b"),
    ("user", r"(?i)\b(engineer|developer|analyst|specialist|associate|consultant|admin)"),
)
"""The shipped role rules, first match wins (``default_playbook.toml`` says the same)."""


class AccountRole(_Section):
    """A buying-group role a member's title gives them: the first rule whose pattern the
    title matches (a title matching none has no role)."""

    role: Annotated[str, Field(min_length=1, max_length=50)]
    title_matches: Annotated[str, AfterValidator(_pattern)]

    @cached_property
    def pattern(self) -> Pattern:
        return Pattern(self.title_matches)


class Accounts(_Section):
    """Accounts: the heat of a whole buying group (the sum of its members' heat)."""

    enabled: bool = True
    hot_heat: float = Field(default=40, ge=MIN_HEAT)
    warm_heat: float = Field(default=10, ge=MIN_HEAT)
    recent: Duration = timedelta(days=14)
    """Coverage: members with an interest signal within this are engaged."""
    roles: list[AccountRole] = Field(
        default_factory=lambda: [
            AccountRole(role=role, title_matches=pattern) for role, pattern in _ACCOUNT_ROLES
        ]
    )

    @model_validator(mode="after")
    def _ordered(self) -> Accounts:
        if self.warm_heat > self.hot_heat:
            raise ValueError(f"warm_heat {self.warm_heat:g} is above hot_heat {self.hot_heat:g}")
        return self

    def role_of(self, title: str | None) -> str | None:
        """The role a title gives, by the first rule it matches.

        >>> Accounts().role_of("VP Engineering"), Accounts().role_of("Data Analyst")
        ('economic_buyer', 'user')
        """
        if not title:
            return None
        return next((rule.role for rule in self.roles if rule.pattern.search(title)), None)


class Grade(_Section):
    """Fit needed for letters A, B and C (D below C); default 2x, 1x and 0.5x ``qualified_at``."""

    a: float | None = None
    b: float | None = None
    c: float | None = None


class Ingest(_Section):
    future_tolerance: Duration = timedelta(minutes=5)
    max_age: Duration | None = None

    def oldest(self, now: datetime) -> datetime | None:
        """The earliest time an incoming record may carry (``None``: back to 1970)."""
        return None if self.max_age is None else now - self.max_age


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
TriggerName = Literal[
    "hot", "new_qualified", "trial_signup", "warm", "form_submit", "reply", "account_hot"
]
TRIGGER_NAMES: tuple[TriggerName, ...] = (
    "hot",
    "new_qualified",
    "trial_signup",
    "warm",
    "form_submit",
    "reply",
    "account_hot",
)
AlertTrigger = Literal[
    "hot",
    "new_qualified",
    "trial_signup",
    "warm",
    "form_submit",
    "reply",
    "account_hot",
    "sla_breach",
]
_WORKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")
_BUSINESS_DAYS = re.compile(r"^\s*(\d+)\s+business\s+days?\s*$")


def _sla(value: Any) -> Any:
    """An SLA is a duration (``"5m"``) or a count of business days (``"1 business day"``)."""
    if not isinstance(value, str):
        raise ValueError('write an SLA as a string such as "5m", "1h" or "1 business day"')
    days = _BUSINESS_DAYS.match(value)
    if days is not None:
        if int(days.group(1)) < 1:
            raise ValueError(f"{value!r} must be at least 1 business day")
        return value.strip()
    try:
        parse_duration(value)
    except TimeFormatError as error:
        raise ValueError(f'{error}, or a count such as "1 business day"') from None
    return value


def _timezone(value: Any) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        raise ValueError(
            f'{value!r} is not a time zone (use an IANA name such as "Europe/Berlin")'
        ) from None
    return value


def _hours(value: Any) -> Any:
    match = _HOURS.match(str(value))
    if match is None:
        raise ValueError(f'{value!r} is not a span of hours (write "09:00-17:00")')
    start = int(match.group(1)) * 60 + int(match.group(2))
    end = int(match.group(3)) * 60 + int(match.group(4))
    if not start < end <= 24 * 60:
        raise ValueError(f"{value!r}: the day must end after it starts, by 24:00")
    return value


class Team(_Section):
    """A team's working calendar: SLA clocks run only inside its hours."""

    timezone: Annotated[str, BeforeValidator(_timezone)] = "UTC"
    days: list[Weekday] = Field(default_factory=lambda: list(_WORKDAYS))
    hours: Annotated[str, BeforeValidator(_hours)] = "09:00-17:00"
    holidays: list[date] = Field(default_factory=list)
    manager: str | None = None


class Trigger(_Section):
    """One reason to put a rep on a lead now; unset keys take the trigger's own defaults."""

    enabled: bool = True
    sla: Annotated[str, BeforeValidator(_sla)] | None = None
    business_hours: bool = True
    events: list[str] | None = None
    action: str | None = None


@dataclass(frozen=True)
class TriggerRule:
    """A trigger with every default filled in."""

    name: TriggerName
    enabled: bool
    sla: str
    business_hours: bool
    events: tuple[str, ...]
    action: str


TRIGGER_DEFAULTS: dict[TriggerName, tuple[str, tuple[str, ...], str]] = {
    "hot": ("5m", (), "Call now: the lead is hot and cools by the minute."),
    "new_qualified": ("1h", (), "Qualify by phone or email within the hour."),
    "trial_signup": ("15m", ("trial_signup",), "Call to help set up the trial."),
    "warm": ("1 business day", (), "Send something useful and book a call."),
    "form_submit": ("1h", ("form_submit",), "Answer the form the owner's lead sent."),
    "reply": ("1h", ("reply",), "Answer the reply."),
    "account_hot": (
        "1h",
        (),
        "Call the account: several people there are engaged; find who decides.",
    ),
}
"""Per trigger: SLA, the event types that fire it (event triggers) and what to do."""
_TRIGGER_EVENTS = tuple(kind for _, events, _ in TRIGGER_DEFAULTS.values() for kind in events)


class OwnerRule(_ConditionSpec):
    """Who owns a new lead whose attribute passes the test: some reps or a team."""

    field: str
    reps: list[str] = Field(default_factory=list)
    team: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> OwnerRule:
        if bool(self.reps) == (self.team is not None):
            raise ValueError("give exactly one of reps or team")
        return self

    @cached_property
    def condition(self) -> Condition:
        return self._condition(self.field)


class Alert(_Section):
    """Where notifications go: a JSON webhook, a Slack incoming webhook, or email."""

    channel: Literal["webhook", "slack", "email"]
    url: str | None = None
    to: list[str] = Field(default_factory=list)
    triggers: list[AlertTrigger] | None = None
    secret_env: str = "LEADHEAT_WEBHOOK_SECRET"

    @model_validator(mode="before")
    @classmethod
    def _one_address(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("to"), str):
            return {**data, "to": [data["to"]]}
        return data

    @model_validator(mode="after")
    def _target(self) -> Alert:
        if self.channel == "email":
            if not self.to:
                raise ValueError('an email alert needs `to` (addresses, "owner" or "manager")')
        elif self.url is None or not re.match(r"^https?://[^\s/]+", self.url):
            raise ValueError(f"a {self.channel} alert needs `url`, an http(s) URL")
        return self

    def wants(self, trigger: str) -> bool:
        return self.triggers is None or trigger in self.triggers


class Speed(_Section):
    """Speed to lead: triggers with SLAs, team calendars, owner rules and alerts."""

    enabled: bool = True
    recent: Duration = timedelta(days=1)
    default_team: str = "default"
    reassign_on_breach: bool = False
    teams: dict[str, Team] = Field(default_factory=dict)
    triggers: dict[TriggerName, Trigger] = Field(default_factory=dict)
    owners: list[OwnerRule] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)
    _rules: dict[tuple[str, int, bool], TriggerRule] = PrivateAttr(default_factory=dict)
    """Each trigger's rule, made once: a reaction asks for them for every lead it judges.
    Keyed by what the rule is made of, as a ``model_copy`` shares this cache."""

    @model_validator(mode="after")
    def _known_teams(self) -> Speed:
        named = {self.default_team, *self.teams}
        for index, rule in enumerate(self.owners):
            if rule.team is not None and rule.team not in named:
                raise ValueError(f"owners[{index}].team: no team {rule.team!r} in [speed.teams]")
        return self

    def team(self, name: str | None) -> Team:
        """The calendar of a team (an unknown or missing team works the default hours)."""
        return (
            self.teams.get(name or self.default_team)
            or self.teams.get(self.default_team)
            or _default_team()
        )

    @cached_property
    def watched_events(self) -> frozenset[str]:
        """Event types that fire a trigger when they arrive."""
        return frozenset(
            kind
            for name in TRIGGER_NAMES
            if (rule := self.trigger(name)).enabled
            for kind in rule.events
        )

    def trigger(self, name: TriggerName) -> TriggerRule:
        key = (name, id(self.triggers), self.enabled)
        rule = self._rules.get(key)
        if rule is None:
            rule = self._rules[key] = self._rule(name)
        return rule

    def _rule(self, name: TriggerName) -> TriggerRule:
        given = self.triggers.get(name) or Trigger()
        sla, events, action = TRIGGER_DEFAULTS[name]
        return TriggerRule(
            name=name,
            enabled=self.enabled and given.enabled,
            sla=given.sla if given.sla is not None else sla,
            business_hours=given.business_hours,
            events=tuple(given.events) if given.events is not None else events,
            action=given.action if given.action is not None else action,
        )


@cache
def _default_team() -> Team:
    """The team of a playbook that names none, made on first use: the models' validators are
    built when first needed (``defer_build``), not at import, which every command pays."""
    return Team()


TemperatureName = Literal["hot", "warm", "cold"]
_CADENCE_DEFAULTS: dict[TemperatureName, tuple[str, str]] = {
    "hot": ("7d", "Call with something of value: a case, a price, a slot for a demo."),
    "warm": ("14d", "Send something useful and ask one question about their plans."),
    "cold": ("30d", "A light nurture touch: news, a guide, an invitation; no hard sell."),
}
"""Per temperature: how often to follow up, and the suggested next step."""


class CadenceStep(_Section):
    """How often the owner follows up a lead of one temperature; unset keys take defaults."""

    every: Annotated[str, BeforeValidator(_sla)] | None = None
    next_step: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class CadenceRule:
    """A cadence with every default filled in."""

    temperature: TemperatureName
    every: str
    next_step: str
    enabled: bool


class Cadence(_Section):
    """Follow-up cadences by temperature: they make the owners' follow-up tasks."""

    enabled: bool = True
    business_hours: bool = True
    digest: bool = True
    hot: CadenceStep = Field(default_factory=CadenceStep)
    warm: CadenceStep = Field(default_factory=CadenceStep)
    cold: CadenceStep = Field(default_factory=CadenceStep)

    def rule(self, temperature: TemperatureName) -> CadenceRule:
        given: CadenceStep = getattr(self, temperature)
        every, step = _CADENCE_DEFAULTS[temperature]
        return CadenceRule(
            temperature,
            given.every if given.every is not None else every,
            given.next_step if given.next_step is not None else step,
            self.enabled and given.enabled,
        )


class Recover(_Section):
    """Lost hot leads: hot within ``within``, no outcome and no touch since."""

    within: Duration = timedelta(days=30)


class Winback(_Section):
    """Win-back lists: expected conversion is measured over ``horizon`` after the list date."""

    older_than: Duration = timedelta(days=180)
    horizon: Duration = timedelta(days=90)


@cache
def template_environment() -> SandboxedEnvironment:
    """The one environment of the playbook's mail templates: plain text, sandboxed, forgiving
    of missing fields. A template is checked here when the playbook is read and rendered in
    it by ``engage/mail.py``, so what loads is what sends."""
    from jinja2 import ChainableUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=True
    )


def _template(value: Any) -> Any:
    from jinja2 import TemplateSyntaxError

    if not isinstance(value, str):
        raise ValueError("write a template as a string")
    try:
        template_environment().parse(value)
    except TemplateSyntaxError as error:
        raise ValueError(f"template line {error.lineno}: {error.message}") from None
    return value


Template = Annotated[str, BeforeValidator(_template)]


class SequenceStep(_Section):
    """One mail of a nurture sequence, sent ``delay`` after enrolment (unset: at once)."""

    delay: Duration | None = None

    @property
    def after(self) -> timedelta:
        return self.delay or timedelta(0)

    subject: Template
    body: Template


class EnrollRule(_Section):
    """Who a sequence takes on its own: leads at a temperature and/or passing a field test."""

    temperature: TemperatureName | None = None
    field: str | None = None
    matches: PatternText = None
    equals: Scalar | None = None
    one_of: list[Scalar] | None = None
    present: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> EnrollRule:
        tests = [
            name
            for name in ("matches", "equals", "one_of", "present")
            if getattr(self, name) is not None
        ]
        if self.field is None and tests:
            raise ValueError(f"{tests[0]} needs `field`")
        if self.field is not None and len(tests) != 1:
            raise ValueError("with `field`, give exactly one of matches, equals, one_of, present")
        if self.field is None and self.temperature is None:
            raise ValueError("give `temperature`, or `field` with a test")
        return self

    @cached_property
    def condition(self) -> Condition | None:
        if self.field is None:
            return None
        return Condition(
            name=self.field,
            equals=self.equals,
            one_of=tuple(self.one_of) if self.one_of is not None else None,
            matches=Pattern(self.matches) if self.matches is not None else None,
            present=self.present,
        )


class NurtureSequence(_Section):
    """A nurture sequence: mails on a schedule until the lead answers, is touched, closes,
    unsubscribes or bounces."""

    steps: list[SequenceStep] = Field(min_length=1)
    enroll: list[EnrollRule] = Field(default_factory=list)
    stop_events: list[str] = Field(
        default_factory=lambda: ["reply", "email_reply", "email_bounced", "bounce"]
    )


class Playbook(_Section):
    """A validated playbook. Build one with :func:`parse_playbook` or :func:`default_playbook`."""

    name: str = "playbook"
    decay: Decay = Field(default_factory=Decay)
    signals: dict[str, Signal] = Field(default_factory=dict)
    fit: Fit = Field(default_factory=Fit)
    evidence: Evidence = Field(default_factory=Evidence)
    temperature: Temperature = Field(default_factory=Temperature)
    grade: Grade = Field(default_factory=Grade)
    ingest: Ingest = Field(default_factory=Ingest)
    speed: Speed = Field(default_factory=Speed)
    cadence: Cadence = Field(default_factory=Cadence)
    recover: Recover = Field(default_factory=Recover)
    winback: Winback = Field(default_factory=Winback)
    sequences: dict[str, NurtureSequence] = Field(default_factory=dict)
    accounts: Accounts = Field(default_factory=Accounts)

    def half_life_for(self, event_type: str) -> timedelta:
        """The half-life that decays this event type's heat."""
        signal = self.signals.get(event_type)
        if signal is not None and signal.half_life is not None:
            return signal.half_life
        return self.decay.half_life

    def points_for(self, event_type: str, properties: Mapping[str, Any] | None = None) -> float:
        """Points of one event: the first matching property rule, else the signal's points.

        Event types without a ``[signals.*]`` entry are worth 0 (stored and shown, not heat).

        >>> book = parse_playbook('[signals.page_view]\\npoints = 1\\n'
        ...     '[[signals.page_view.rules]]\\nproperty = "url"\\n'
        ...     'matches = "/pricing"\\npoints = 5')
        >>> book.points_for("page_view", {"url": "/pricing"}), book.points_for("page_view")
        (5.0, 1.0)
        >>> book.points_for("unknown_thing")
        0.0
        """
        signal = self.signals.get(event_type)
        if signal is None:
            return 0.0
        if properties:
            for rule in signal.rules:
                if rule.condition.holds(properties):
                    return float(rule.points)
        return float(signal.points)

    @cached_property
    def half_lives(self) -> tuple[timedelta, ...]:
        """The distinct half-lives in use: one heat key per lead for each."""
        spans = {self.decay.half_life}
        spans.update(self.half_life_for(name) for name in self.signals)
        return tuple(sorted(spans))

    @cached_property
    def positive_half_lives(self) -> tuple[timedelta, ...]:
        """The half-lives of the points that add heat: the heat index scans these keys (a
        lead's heat is at most its positive part, so they bound it)."""
        spans = {
            self.half_life_for(name)
            for name, signal in self.signals.items()
            if signal.points > 0 or any(rule.points > 0 for rule in signal.rules)
        }
        return tuple(sorted(spans)) or (self.decay.half_life,)

    @cached_property
    def has_negative_signals(self) -> bool:
        """Whether any signal or signal rule is worth less than 0 points (pulls heat down)."""
        return any(
            signal.points < 0 or any(rule.points < 0 for rule in signal.rules)
            for signal in self.signals.values()
        )

    @cached_property
    def evidence_names(self) -> dict[str, EvidenceKind]:
        """Property/attribute name → the BANT kind it carries."""
        names: dict[str, EvidenceKind] = {}
        for kind in EVIDENCE_KINDS:
            for name in getattr(self.evidence, kind):
                names[name] = kind
        return names

    @cached_property
    def grade_thresholds(self) -> tuple[float, float, float]:
        """Fit needed for A, B and C."""
        base = self.fit.qualified_at
        return (
            self.grade.a if self.grade.a is not None else 2 * base,
            self.grade.b if self.grade.b is not None else base,
            self.grade.c if self.grade.c is not None else 0.5 * base,
        )

    def summary(self) -> dict[str, Any]:
        """The playbook as plain data with durations written back as "7d"."""
        summary: dict[str, Any] = _durations_as_text(self.model_dump(mode="python"))
        return summary


@dataclass(frozen=True)
class Unscored:
    """An event type the playbook has no ``[signals.*]`` for: how many events, and the scored
    type it may be a typo of (``None`` when none is near)."""

    type: str
    events: int
    near: str | None

    def __str__(self) -> str:
        hint = f" (did you mean {self.near}?)" if self.near else ""
        return f"{self.type}: {self.events:,} event{'' if self.events == 1 else 's'}{hint}"


def unscored_types(book: Playbook, counts: Mapping[str, int]) -> list[Unscored]:
    """The types in ``counts`` (type -> events) the playbook does not score, most events
    first, each with a "did you mean" for a near miss of a scored type. Such events are
    stored at 0 points, so a misspelt type would otherwise cool every lead that sent it
    without a word.

    >>> book = parse_playbook("[signals.demo_request]\\npoints = 25\\n")
    >>> [str(u) for u in unscored_types(book, {"demo_requets": 1, "webinar": 2})]
    ['webinar: 2 events', 'demo_requets: 1 event (did you mean demo_request?)']
    """
    found = []
    for kind, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if kind in book.signals:
            continue
        near = difflib.get_close_matches(kind, list(book.signals), n=1, cutoff=0.8)
        found.append(Unscored(kind, count, near[0] if near else None))
    return found


def _durations_as_text(value: Any) -> Any:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _durations_as_text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_durations_as_text(item) for item in value]
    return value


@dataclass(frozen=True)
class PlaybookProblem:
    """One mistake: where (dotted key and line) and what is wrong."""

    key: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}, " if self.line is not None else ""
        return f"{where}{self.key or 'playbook'}: {self.message}"


class PlaybookError(ValueError):
    """A playbook that cannot be used; ``problems`` lists every mistake found, in the order
    of the lines they sit on (those with no line last), and the message puts each on a line
    of its own: a manager fixes them top to bottom."""

    def __init__(self, problems: list[PlaybookProblem], source_name: str = "playbook") -> None:
        self.problems = sorted(
            problems, key=lambda p: (p.line is None, p.line or 0, p.key, p.message)
        )
        if len(self.problems) == 1:
            text = f"{source_name}: {self.problems[0]}"
        else:
            text = f"{source_name}: {len(self.problems)} problems\n" + "\n".join(
                f"  {problem}" for problem in self.problems
            )
        super().__init__(text)


def parse_playbook(text: str, source_name: str = "playbook") -> Playbook:
    """Validate TOML text as a playbook.

    >>> parse_playbook("").temperature.hot_heat
    20
    >>> parse_playbook('[temperature]\\nhot_heta = 3')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    leadheat.playbook.PlaybookError: playbook: line 2, temperature.hot_heta: unknown key (did ...)
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        problem = PlaybookProblem("", _toml_line(error, text), str(error))
        raise PlaybookError([problem], source_name) from None
    try:
        return Playbook.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            loc = tuple(item["loc"])
            if item["type"] == "extra_forbidden":
                message = "unknown key" + _did_you_mean(loc)
            else:
                message = item["msg"].removeprefix("Value error, ")
            key = ".".join(str(part) for part in loc)
            problems.append(PlaybookProblem(key, locate_line(text, loc), message))
        raise PlaybookError(problems, source_name) from None


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    """`` (did you mean KEY?)`` for an unknown key close to one its table knows; empty if none.

    >>> _did_you_mean(("temprature",)), _did_you_mean(("fit", "rules", 0, "feild"))
    (' (did you mean temperature?)', ' (did you mean field?)')
    >>> _did_you_mean(("signals", "demo_request", "pionts"))
    ' (did you mean points?)'
    >>> _did_you_mean(("fit", "zzz"))
    ''
    """
    model: Any = Playbook
    keyed = False  # the part is a name of the table's own choosing ([signals.NAME])
    for part in loc[:-1]:
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return ""
        keyed = typing.get_origin(field.annotation) is dict
        model = _model_in(field.annotation)
        if model is None:
            return ""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return ""
    near = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.7)
    return f" (did you mean {near[0]}?)" if near else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The playbook table type an annotation holds (``Signal`` in ``dict[str, Signal]``,
    ``FitRule`` in ``list[FitRule]``), or ``None`` for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in reversed(typing.get_args(annotation)):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def signal_name_notes(text: str) -> list[str]:
    """A note per ``[signals.NAME]`` that no shipped event type is called but one nearly is
    (``demo_requets``): the playbook is valid, and events of the real type would then score
    nothing.

    >>> print(*signal_name_notes('[signals.demo_requets]\\npoints = 25\\n'))
    line 1, signals.demo_requets: no shipped event type has this name (did you mean demo_request?)
    >>> signal_name_notes('[signals.webinar_attended]\\npoints = 5\\n')
    []
    """
    given = tomllib.loads(text).get("signals")
    if not isinstance(given, dict):
        return []
    known = [*default_playbook().signals, *_TRIGGER_EVENTS]
    notes = []
    for name in given:
        if name in known:
            continue
        near = difflib.get_close_matches(
            name, [k for k in known if k not in given], n=1, cutoff=0.85
        )
        if near:
            line = locate_line(text, ("signals", name))
            where = f"line {line}, " if line is not None else ""
            notes.append(
                f"{where}signals.{name}: no shipped event type has this name "
                f"(did you mean {near[0]}?)"
            )
    return notes


def _toml_line(error: tomllib.TOMLDecodeError, text: str) -> int:
    """The line of a TOML syntax error. ``tomllib`` gives it as an attribute only from Python
    3.14; before, it is in the message, as ``(at line 2, column 11)`` or ``(at end of
    document)``, which is the last line.

    >>> try:
    ...     tomllib.loads("a = 1\\nb = ")
    ... except tomllib.TOMLDecodeError as error:
    ...     _toml_line(error, "a = 1\\nb = ")
    2
    """
    line = getattr(error, "lineno", None)
    if isinstance(line, int):
        return line
    found = re.search(r"\(at line (\d+), column \d+\)", str(error))
    if found is not None:
        return int(found.group(1))
    return max(1, len(text.splitlines()))


def default_playbook_text() -> str:
    """The playbook that ships with leadheat, modelled on the source definitions."""
    return resources.files("leadheat").joinpath("default_playbook.toml").read_text("utf-8")


def default_playbook() -> Playbook:
    return parse_playbook(default_playbook_text(), "default playbook")


def fallback_notes(text: str) -> list[str]:
    """One note per section of the shipped playbook that the playbook ``text`` leaves out
    and whose built-in defaults differ from the shipped ones, naming what that drops: a
    section left out is not the shipped one but the bare defaults, so a playbook without
    ``[evidence]`` no longer reads a ``pain`` property as need, unless it says so.

    >>> for note in fallback_notes('[decay]\\nhalf_life = "3d"\\n[signals.demo_request]\\n'
    ...         'points = 25\\n[fit]\\n[temperature]\\n[ingest]\\n'):
    ...     print(note[:68])
    no [evidence]: built-in defaults apply, dropping the shipped need pa
    >>> fallback_notes(default_playbook_text())
    []
    """
    given = tomllib.loads(text)
    shipped_text = tomllib.loads(default_playbook_text())
    shipped, bare = default_playbook(), Playbook()
    notes = []
    for section, raw in shipped_text.items():
        if section in given or not isinstance(raw, dict):
            continue
        ours, theirs = getattr(shipped, section), getattr(bare, section)
        if isinstance(ours, dict):  # [signals.*]: what each names goes
            dropped = [f"{section} {', '.join(name for name in raw if name not in theirs)}"]
        else:
            dropped = [
                _dropped(key, value, getattr(theirs, key))
                for key, value in raw.items()
                if getattr(ours, key) != getattr(theirs, key)
            ]
        if dropped:
            what = "; ".join(dropped)
            notes.append(f"no [{section}]: built-in defaults apply, dropping the shipped {what}")
    return notes


def _dropped(key: str, shipped: Any, bare: Any) -> str:
    """What the bare default of ``key`` lacks of the shipped value, as the TOML says it.

    >>> _dropped("need", ["need", "pain"], ["need"]), _dropped("ttl", "90d", timedelta(days=7))
    ('need pain', 'ttl = "90d"')
    >>> _dropped("rules", [{"field": "title"}, {"field": "title"}, {"field": "country"}], [])
    '3 rules (on title, country)'
    """
    if isinstance(shipped, list) and shipped and all(isinstance(x, dict) for x in shipped):
        fields = dict.fromkeys(str(item.get("field", "?")) for item in shipped)
        return f"{len(shipped)} {key} (on {', '.join(fields)})"
    if isinstance(shipped, list):
        return f"{key} {', '.join(str(item) for item in shipped if item not in bare)}"
    return f"{key} = {json.dumps(shipped)}"


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _split_key(dotted: str) -> list[str]:
    return [
        part.strip().strip("\"'")
        for part in re.split(r"\.(?=(?:[^\"']|\"[^\"]*\"|'[^']*')*$)", dotted)
    ]


def locate_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line that defines the longest prefix of ``loc`` (a pydantic error path).

    >>> text = "[fit]\\n[[fit.rules]]\\nfield='a'\\n[[fit.rules]]\\npoints='x'"
    >>> locate_line(text, ("fit", "rules", 1, "points"))
    5

    A table only implied by the ones inside it (``[[speed.owners]]`` with no ``[speed]``)
    is located at the first of them, so a table-wide error still has a line:

    >>> locate_line("[[speed.owners]]\\nteam = 'x'", ("speed",))
    1
    """
    wanted = [str(part) for part in loc]
    best_line, best_depth, first_inside = None, 0, None
    table: list[str] = []
    arrays: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            path = _split_key(header.group(2))
            if header.group(1) == "[[":
                index = arrays.get(tuple(path), -1) + 1
                arrays[tuple(path)] = index
                table = [*path, str(index)]
            else:
                table = path
            candidate = table
        else:
            key = _KEY.match(line)
            if not key:
                continue
            candidate = [*table, *_split_key(key.group(1))]
        depth = _common_prefix(candidate, wanted)
        if depth == len(candidate) and depth > best_depth:
            best_line, best_depth = number, depth
        elif depth == len(wanted) and first_inside is None:
            first_inside = number
    return best_line if best_line is not None else first_inside


def _common_prefix(left: list[str], right: list[str]) -> int:
    depth = 0
    for a, b in zip(left, right, strict=False):
        if a != b:
            break
        depth += 1
    return depth
