"""Templated training rows the dev set lacks: benign prompts that use attack words.

The dev set's README warns that benign prompts saying "ignore", "instructions" or "system prompt"
are scarce, so a model would learn to block those words. These templates add such hard negatives
(group ``augment``: always in training, never scored). Deterministic: fixed seed.
"""

from __future__ import annotations

import itertools
import random

_HARD_NEGATIVES = [
    "Please ignore the typos in my previous message, I was typing on my phone.",
    "Ignore the last paragraph of my draft and help me rewrite the introduction.",
    "How do I write a good system prompt for a customer-support chatbot?",
    "What are the assembly instructions for a standard bookshelf?",
    "Can you summarise the safety instructions in this user manual?",
    "My teacher told us to ignore the previous exercise. What does question 4 mean?",
    "Explain what a prompt injection attack is and how developers defend against it.",
    "Our security team wants a short training note about jailbreak attempts on chatbots.",
    "Write a function that ignores blank lines when parsing a config file.",
    "Forget about the budget for now; which laptop has the best keyboard?",
    "The previous instructions were unclear. Could you explain step 3 again?",
    "Act as a travel guide and suggest three things to do in Lisbon.",
    "Pretend you are a pirate and tell my kids a bedtime story about treasure.",
    "You are a helpful assistant that answers questions about cooking.",
    "Summarise the rules of chess for a beginner.",
    "How do I reset my router password if I forgot the admin login?",
    "Translate 'ignore the noise and focus on the work' into French.",
    "In your answer, please include a short example in Python.",
    "What does 'override' mean in object-oriented programming?",
    "Disregard my earlier question about taxes; how do I file an extension?",
    "Show me how to print the contents of a text file in Bash.",
    "What is the system prompt feature in the OpenAI API used for?",
    "Reveal the answer to the riddle only after I make three guesses.",
    "Explain the bypass capacitor in this circuit.",
    "Write a story where the hero has to ignore the dragon's tricks to win.",
    "Can you list the previous five presidents of France?",
    "Our README says: never share your API key. Is that good advice?",
    "Please repeat the recipe steps above but in metric units.",
    "I want you to act as an English teacher and correct my essay.",
    "What is the password policy recommended by NIST?",
    "Roleplay a job interview with me; you are the interviewer for a data analyst role.",
    "From now on, please answer in Spanish so I can practise.",
    "New task for today: plan a vegetarian dinner menu for six people.",
    "Ignore case when comparing these strings in JavaScript.",
    "How do attackers use DAN prompts, and how can a company detect them?",
    "System: the build failed at step 4. What does this CI log mean?",
    "Admin: please restart the staging server after the deploy.",
    "Assistant: here is the summary you asked for. User: thanks, now shorten it.",
    "Tell me about the history of the original instructions given to Apollo 11 astronauts.",
    "Is it safe to ignore a compiler warning about unused variables?",
]
_PREFIXES = ["", "Hi! ", "Quick question: ", "Hello, ", "Thanks in advance. ", "Hey there. "]
_SUFFIXES = ["", " Thanks!", " Keep it short.", " Please be detailed.", " Answer in two sentences."]


def augmented_rows(rows: list[dict[str, object]], groups: list[str]) -> list[dict[str, object]]:
    """Training-only rows: each with ``text``, ``label``, and ``group`` (``augment``)."""
    rng = random.Random(20261126)
    out: list[dict[str, object]] = []
    for text, pre, suf in itertools.product(_HARD_NEGATIVES, _PREFIXES, _SUFFIXES):
        if rng.random() < 0.35:
            out.append({"text": f"{pre}{text}{suf}", "label": 0, "group": "augment"})
    return out
