"""Demo data: realistic documents in every framework's shape, and loading them.

conversation.py  the conversation model the writers read (turns, tool calls, steps, logs)
writers.py       one writer per format id (Picoflow, one writer for all its variants; OpenAI chat)
scenarios.py     the scripted dialogue (support, booking, triage, analysis, an alert stream)
dataset.py       the data set: which sessions, when, and every version (generate_documents)
load.py          ingesting it like any client (manage.py load_demo)
"""
