"""Explainable prompt-injection and jailbreak heuristics (linear-time RE2 patterns).

Each :class:`Rule` names one family of attack phrasing. Patterns run on the *folded* text (see
:mod:`bastion.detectors.normalize`: lower case, NFKC, homoglyphs folded), so they are written in
lower case. The classifier uses the rule hits as features; the detector reports them as
explanations with spans.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import re2

# Words reused across patterns (kept small and explicit; RE2 guarantees linear time).
_IGNORE = (
    r"(?:ignore|ignoring|disregard|forget|skip|bypass|override|overlook|neglect|abandon|drop|discard|"
    r"dismiss|omit|set aside|put aside|throw away|do not follow|don't follow|stop following)"
)
# No "my": "ignore my last message" is a user correcting themselves, not an attack on the model's orders.
_QUANT = r"(?:(?:all|any|each|every|the|your|these|those|of|its|that|this)\s+){0,3}"
_PRIOR = (
    r"(?:previous|prior|above|earlier|preceding|initial|original|former|foregoing|old|past|existing|"
    r"current|given|system|developer|default|pre-?set|safety|security|programmed|built-?in)"
)
_ORDERS = (
    r"(?:instructions?|prompts?|rules?|directions?|directives?|guidelines?|commands?|context|constraints?|"
    r"programming|orders?|messages?|text|restrictions?|policies|policy|guidance|principles|settings|tasks?|"
    r"inputs?|training|conditioning|directions)"
)
_VERB_SHOW = (
    r"(?:reveal|show|print|output|repeat|display|tell|give|share|write out|dump|leak|spell out|recite|"
    r"expose|disclose|list|provide|return|echo|paste|copy|translate|summari[sz]e)"
)
_LEAK_TARGET = (
    r"(?:system\s+prompt|initial\s+prompt|original\s+prompt|hidden\s+prompt|secret\s+prompt|"
    r"(?:system|initial|original|hidden|secret|internal|confidential|developer|pre-?prompt)\s+"
    r"(?:instructions?|rules|guidelines|message|configuration|directives?)|"
    r"your\s+(?:instructions|rules|guidelines|directives|prompt|password|secret\s+key|api\s+key)|"
    r"the\s+(?:prompt|password|secret\s+key|api\s+key)|"
    r"(?:your|the|its)\s+(?:system|initial|original|hidden|secret|first|full)\s+(?:prompt|instructions|message)|"
    r"pre-?prompt|the\s+password|the\s+secret\s+(?:password|key|word|code|phrase|token))"
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One heuristic: a name (stable, used in finding types), a kind, a weight and a pattern."""

    name: str
    kind: str  # "prompt_injection" or "jailbreak"
    weight: float  # 0-1 contribution to the heuristic score
    pattern: str
    explanation: str


RULES: tuple[Rule, ...] = (
    Rule(
        "override",
        "prompt_injection",
        0.9,
        rf"{_IGNORE}\s+{_QUANT}(?:{_PRIOR}\s+)?(?:\w+\s+)?{_ORDERS}",
        "asks the model to ignore or override its instructions",
    ),
    Rule(
        "override_new",
        "prompt_injection",
        0.6,
        r"(?:(?:your\s+)?new\s+(?:instructions?|task|rules|role|objective|goal)\s*(?:is|are|:)|"
        r"from\s+now\s+on,?\s+(?:you|your|ignore|only|always|respond|answer|act)|"
        r"instead,?\s+(?:you\s+(?:must|should|will)|just|only)\s+(?:say|print|output|respond|write|reply)|"
        r"(?:stop|cease)\s+(?:being|acting\s+as)\s+(?:an?\s+)?(?:assistant|ai|helpful)|"
        r"(?:the|these)\s+(?:above|previous)\s+(?:instructions|rules)\s+(?:are|were)\s+"
        r"(?:wrong|fake|void|cancell?ed|outdated|not\s+valid))",
        "announces new instructions that replace the original ones",
    ),
    Rule(
        "prompt_leak",
        "prompt_injection",
        0.8,
        rf"{_VERB_SHOW}\s+(?:me\s+|us\s+)?(?:back\s+)?(?:all\s+|exactly\s+|verbatim\s+)?(?:of\s+)?{_LEAK_TARGET}|"
        r"(?:what|which)\s+(?:is|are|was|were)\s+(?:your|the)\s+(?:system\s+prompt|initial\s+instructions|"
        r"original\s+instructions|hidden\s+instructions|secret\s+password)|"
        r"(?:repeat|print|output|return)\s+(?:all\s+|everything\s+|the\s+)?(?:words|text|everything|"
        r"content|lines)\s+(?:above|before|written\s+above|preceding)|"
        r"(?:beginning|start)\s+of\s+(?:the|this|your)\s+(?:conversation|prompt|context|instructions)",
        "tries to make the model reveal its system prompt or secrets",
    ),
    Rule(
        "fake_turn",
        "prompt_injection",
        0.7,
        r"(?m)(?:^|\n)\s*(?:#{1,4}\s*)?(?:system|assistant|developer|admin(?:istrator)?)\s*(?:message|prompt|"
        r"instruction|note|override|update)?\s*:\s*\S|"
        r"<\|(?:im_start|im_end|system|assistant|user|endoftext|eot_id|start_header_id)\|>|"
        r"\[/?inst\]|<</?sys>>|</?(?:system|assistant|user|instructions?|context|document|data|tool_output|"
        r"search_results?)>|"
        r"(?:end|close)\s+of\s+(?:the\s+)?(?:user\s+)?(?:input|document|context|data|email|text)\s*[\]\-=#*>]",
        "contains a fake system/assistant turn or closes the data delimiter",
    ),
    Rule(
        "response_hijack",
        "prompt_injection",
        0.3,
        r"\b(?:in|to|into|throughout|within)\s+your\s+(?:response|reply|answer|output|code)s?\b|"
        r"\byour\s+(?:response|reply|answer|output)s?\s+(?:should|must|has\s+to|needs\s+to)\b|"
        r"\b(?:the\s+)?(?:following|upcoming|subsequent|next)\s+(?:instructions?|steps?|task|directives?)\s+"
        r"(?:are|is|must|should|take)|"
        r"\b(?:urgent|important|critical|priority)\s+(?:task|update|instruction|alert|action)\b",
        "addresses the model from inside data (instructions embedded in a document or tool output)",
    ),
    Rule(
        "dan",
        "jailbreak",
        0.9,
        r"\bdo\s+anything\s+now\b|\bdan\s+mode\b|\bdeveloper\s+mode\s+(?:enabled|on|output|activated)|"
        r"\bjail\s?broken?\b|\bjailbreak(?:ed|ing)?\b|\bstay\s+in\s+character\b|\bunfilt(?:e)?red\s+(?:ai|mode|response)|"
        r"\b(?:evil|unrestricted|uncensored|unfiltered|amoral|unethical|rogue)\s+(?:ai|assistant|chatbot|bot|"
        r"mode|version|persona|character|model)\b",
        "uses a known persona jailbreak (DAN, developer mode, unrestricted persona)",
    ),
    Rule(
        "no_limits",
        "jailbreak",
        0.7,
        r"\b(?:without|no|free\s+(?:of|from)|not\s+bound\s+by|break\s+free\s+of|beyond)\s+(?:any\s+)?"
        r"(?:ethical\s+|moral\s+|content\s+|safety\s+)?(?:restrictions|filters|filtering|limitations|limits|"
        r"censorship|guidelines|boundaries|morals|ethics|rules|policies|constraints)\b.{0,60}"
        r"|\b(?:ignore|bypass|disable|turn\s+off|switch\s+off|circumvent|evade)\s+(?:\w+\s+){0,2}"
        r"(?:safety|content|ethical|moral|openai|anthropic|usage)\s+(?:filters?|guidelines|polic(?:y|ies)|"
        r"restrictions|rules|protocols|measures)",
        "asks the model to drop its safety policy",
    ),
    Rule(
        "persona",
        "jailbreak",
        0.5,
        r"\b(?:you\s+are|you're|act\s+as|pretend\s+(?:to\s+be|you\s+are)|roleplay\s+as|role-play\s+as|"
        r"respond\s+as|become)\s+(?:\w+\s+){0,4}(?:who|that|which)\s+(?:\w+\s+){0,3}"
        r"(?:never\s+refuses?|can\s+do\s+anything|has\s+no\s+(?:rules|limits|restrictions|filters|ethics|morals)|"
        r"doesn't\s+care|does\s+not\s+care|is\s+not\s+bound|answers?\s+(?:any|every)thing)|"
        r"\byou\s+are\s+no\s+longer\s+(?:an?\s+)?(?:ai|assistant|chatgpt|claude|bound|restricted|a\s+language)|"
        r"\b(?:two|both)\s+(?:different\s+)?(?:responses|answers|ways)\b.{0,80}\b(?:unfiltered|jailbr|dan|"
        r"normal|classic)",
        "sets up a role-play persona that has no rules",
    ),
    Rule(
        "multilingual_override",
        "prompt_injection",
        0.9,
        r"(?:ignora|ignore[zr]?|olvida|olvide|oublie[zr]?|ignoriere|vergiss|ignorieren\s+sie|vergessen\s+sie|"
        r"dimentica|esquece|esqueça|negeer|vergeet|zignoruj|ignorera|glöm|missachte|missachten\s+sie|"
        r"ignorar|desconsidera|ignorate|ignoriert)\s+(?:\pL+\s+){0,3}"
        r"(?:instrucciones|indicaciones|instructions|consignes|anweisungen|instruktionen|befehle|anordnungen|"
        r"istruzioni|instruções|instrucoes|instructies|opdrachten|instrukcje|instruktioner|regeln|reglas|"
        r"règles|regole|regras|vorgaben|configuración|konfiguration|paramètres|directrices|richtlinien)|"
        r"(?:игнорируй|игнорируйте|забудь|забудьте|проигнорируй)\s+(?:\pL+\s+){0,3}(?:инструкции|указания|правила)|"
        r"(?:忽略|无视|無視|忘记|忘記|忘掉)\s*\S{0,8}(?:指令|指示|说明|說明|规则|規則|提示)|"
        r"(?:指示|命令|ルール|プロンプト)\S{0,6}(?:無視|忘れ)|"
        r"(?:이전|위의|모든)\s*\S{0,6}\s*(?:지시|명령|규칙)\S{0,4}\s*(?:무시|잊어)|"
        r"(?:تجاهل|انس)\s+(?:\pL+\s+){0,3}(?:التعليمات|الأوامر|القواعد)|"
        r"(?:पिछले|सभी|ऊपर)\s+(?:\pL+\s+){0,3}(?:निर्देशों|निर्देश)\s+(?:\pL+\s+){0,2}(?:अनदेखा|नज़रअंदाज़|भूल)",
        "asks the model to ignore its instructions (in a language other than English)",
    ),
    Rule(
        "multilingual_leak",
        "prompt_injection",
        0.8,
        r"(?:muestra|revela|dime|imprime|montre|révèle|affiche|zeig|verrate|gib\s+mir|mostra|rivela|"
        r"stampa|mostre|revele)\s+(?:\pL+\s+){0,3}(?:prompt|instrucciones|instructions|anweisungen|"
        r"istruzioni|instruções|contraseña|mot\s+de\s+passe|passwort|password|senha)\s+"
        r"(?:del\s+sistema|du\s+système|système|des\s+systems|di\s+sistema|do\s+sistema|secret[oa]?|"
        r"secrète|geheim\w*|iniciales|initiales|originales|ursprünglich\w*)|"
        r"(?:系统提示|系統提示|システムプロンプト|시스템\s*프롬프트|системн\pL+\s+(?:промпт|подсказк\pL*|инструкци\pL*))",
        "tries to reveal the system prompt (in a language other than English)",
    ),
)


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule match in a (folded) text: the rule and the folded-text range it matched."""

    rule: Rule
    start: int
    end: int


@cache
def _compiled() -> tuple[tuple[Rule, re2._Regexp], ...]:
    options = re2.Options()
    options.max_mem = 64 << 20
    return tuple((r, re2.compile(r.pattern, options)) for r in RULES)


def match_rules(folded_text: str) -> list[RuleHit]:
    """Every rule hit in ``folded_text`` (at most one per rule: the first)."""
    hits: list[RuleHit] = []
    for rule, rx in _compiled():
        m = rx.search(folded_text)
        if m is not None:
            hits.append(RuleHit(rule, m.start(), m.end()))
    return hits


def rule_names() -> tuple[str, ...]:
    """The stable names of every rule, in feature order."""
    return tuple(r.name for r in RULES)


def patterns() -> tuple[str, ...]:
    """Every pattern (for the linear-time test)."""
    return tuple(r.pattern for r in RULES)
