"""Scripted dialogue for the demo data set: who talks, about what, with which tools and failures.

A scenario script drives a builder that appends turns with plausible pauses and records step
activations, step state and log entries on a ``Conversation``; the writers (``writers.py``)
turn that into documents. Everything random comes from the ``random.Random`` passed in, in a
fixed order, so a seed gives the same conversations (the data set is pinned byte for byte).

Scenarios: customer support (with Spanish, German and Japanese customers and one session whose
order notes carry HTML/JS payloads), travel booking, incident triage, data-analysis chats, and
an alert stream of about 2,000 messages.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sessions_api.demo.conversation import Conversation, ToolCall, Turn

MODELS = ("gpt-4o-mini", "gpt-4.1", "claude-sonnet-4", "gemini-2.5-flash")
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"


def message_nonce(rng: random.Random) -> int:
    """The 10 random digits ending a Picoflow message id."""
    return rng.randrange(10**9, 10**10)


def seeded_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


class _Builder:
    """Appends turns with plausible pauses; tracks the active step, its state and logs."""

    def __init__(self, rng: random.Random, conv: Conversation) -> None:
        self.rng = rng
        self.conv = conv
        self.t = 0.0
        self.step = ""

    def enter(self, step: str) -> None:
        if step != self.step:
            self.step = step
            self.conv.sequence.append((self.t, step))

    def wait(self, low: float, high: float) -> None:
        self.t += round(self.rng.uniform(low, high), 3)

    def system(self, text: str) -> None:
        self._add(Turn("system", self.step, self.t, text))
        self.wait(0.005, 0.05)

    def user(self, text: str, *, think: tuple[float, float] = (6, 75)) -> None:
        self.wait(*think)
        self._add(Turn("user", self.step, self.t, text))

    def say(self, text: Any) -> None:
        self.wait(0.8, 7.5)
        self._add(Turn("assistant", self.step, self.t, text))

    def tools(self, *calls: tuple[str, dict[str, Any], bool, str]) -> list[ToolCall]:
        self.wait(0.7, 4.0)
        model = self.conv.step_models.get(self.step, "")
        made = [
            ToolCall(self._call_id(model), name, args, ok, result)
            for name, args, ok, result in calls
        ]
        self._add(Turn("assistant", self.step, self.t, "", calls=made))
        for call in made:
            self.wait(0.05, 2.5 if call.ok else 10.0)
            self._add(
                Turn(
                    "tool",
                    self.step,
                    self.t,
                    call.result,
                    call=call,
                    stop_tool=self.rng.random() < 0.3,
                )
            )
        return made

    def _add(self, turn: Turn) -> None:
        turn.nonce = message_nonce(self.rng)
        self.conv.turns.append(turn)

    def remember(self, key: str, value: Any) -> None:
        self.conv.state.append((self.t, self.step, key, value))

    def log(self, level: str, message: str, **extra: Any) -> None:
        self.conv.logs.append((self.t + 0.01, level, message, extra))

    def checkpoint(self) -> None:
        self.conv.checkpoints.append(len(self.conv.turns))

    def _call_id(self, model: str) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        token = "".join(self.rng.choice(alphabet) for _ in range(24))
        if model.startswith("claude"):
            return f"toolu_01{token[:22]}"
        if model.startswith("gemini"):
            return str(seeded_uuid(self.rng))
        return f"call_{token}"


# --- content ----------------------------------------------------------------------------------

_CUSTOMERS = [
    ("Maria García", "maria.garcia@example.com", "es"),
    ("Jonas Müller", "jonas.mueller@example.de", "de"),
    ("Aiko Tanaka", "aiko.tanaka@example.jp", "ja"),
    ("Chloé Dubois", "chloe.dubois@example.fr", "en"),
    ("Sam Carter", "sam.carter@example.com", "en"),
    ("Priya Nair", "priya.nair@example.in", "en"),
    ("Łukasz Nowak", "lukasz.nowak@example.pl", "en"),
    ("Olu Adebayo", "olu.adebayo@example.ng", "en"),
    ("Zoë Fischer", "zoe.fischer@example.ch", "en"),
    ("Mateus Oliveira", "mateus.oliveira@example.com.br", "en"),
    ("Ingrid Solberg", "ingrid.solberg@example.no", "en"),
    ("Dan Whitfield", "dan.whitfield@example.com", "en"),
]
_ENGINEERS = ["alex.kim", "r.okafor", "mei.lin", "t.schneider", "j.alvarez", "s.haddad"]
_ANALYSTS = ["nora.b", "kwame.a", "lea.v", "hiro.s", "fatima.z", "ben.c"]
_PRODUCTS = [
    ("wireless headphones", 129.0),
    ("espresso machine", 349.9),
    ("running shoes", 89.95),
    ("standing desk", 499.0),
    ("e-reader", 139.99),
    ("blender", 79.5),
    ("backpack", 64.0),
]
_CARRIERS = ["DHL", "UPS", "DPD", "FedEx", "PostNL", "Royal Mail"]
_HUBS = ["Leipzig", "Köln", "Rotterdam", "Memphis", "East Midlands", "Zaragoza"]
_TRIPS = [
    ("PDX", "Lisbon", "Alfama", "EUR"),
    ("SFO", "Kyoto", "Gion", "JPY"),
    ("JFK", "Reykjavík", "Laugavegur", "ISK"),
    ("LHR", "São Paulo", "Vila Madalena", "BRL"),
    ("BER", "Zürich", "Altstadt", "CHF"),
    ("CDG", "Marrakesh", "the Medina", "MAD"),
    ("YVR", "Mexico City", "Roma Norte", "MXN"),
    ("AMS", "Seoul", "Bukchon", "KRW"),
    ("ORD", "Dublin", "Temple Bar", "EUR"),
]
_AIRLINES = ["TAP Air Portugal", "Lufthansa", "Icelandair", "KLM", "Air Canada", "ANA", "Iberia"]
_HOTELS = [
    "Casa do Rio",
    "Hotel Sakura Garden",
    "Harbour View Suites",
    "The Linden",
    "Riad Al Fassia",
    "Posada Jacarandá",
    "Hotel Nordlys",
]
_SERVICES = [
    ("checkout-api", "payments-gw", "upstream connect error"),
    ("search-api", "elasticsearch", "circuit breaker open"),
    ("auth-service", "redis-sessions", "connection pool exhausted"),
    ("orders-worker", "postgres-primary", "deadlock detected"),
    ("notifications", "smtp-relay", "421 too many connections"),
]
_INCIDENT_OPENERS = [
    "Checkout is returning 502 for roughly {pct}% of requests since {hhmm} UTC.",
    "Customers report that search results are empty on the mobile app since {hhmm} UTC.",
    "Login loops back to the SSO page for part of the HR portal users since {hhmm}.",
    "The nightly ETL job orders_daily failed twice in a row; last attempt at {hhmm} UTC.",
    "Disk usage on db-replica-2 is at {pct}% and climbing.",
    "VPN keeps dropping every ~20 minutes for the Berlin office since {hhmm}.",
]
_TABLES = {
    "orders": ["order_id", "customer_id", "region", "created_at", "total_eur", "status"],
    "customers": ["customer_id", "signup_date", "plan", "country", "churned_at"],
    "events": ["event_id", "customer_id", "name", "occurred_at", "properties"],
    "tickets": ["ticket_id", "customer_id", "opened_at", "closed_at", "priority", "csat"],
}
_ANALYSIS_QUESTIONS = [
    ("What was weekly revenue by region over the last 8 weeks?", "orders", "line"),
    ("Which plans have the highest churn since January?", "customers", "bar"),
    (
        "How many support tickets per priority did we close last month, and the median CSAT?",
        "tickets",
        "bar",
    ),
    ("Show daily active customers for the past 30 days.", "events", "line"),
    ("What share of orders were cancelled, per country, this quarter?", "orders", "bar"),
    ("Compare average order value for new vs returning customers.", "orders", "bar"),
]


def _money(value: float, currency: str = "EUR") -> str:
    return f"{value:,.2f} {currency}"


def _order_no(rng: random.Random) -> str:
    return f"A{rng.randrange(100000, 999999)}"


def _first(name: str) -> str:
    return name.split()[0]


# --- scenario scripts -------------------------------------------------------------------------


def _support(b: _Builder, *, exchanges: int, fail_at: int | None, xss: bool = False) -> None:
    rng, conv = b.rng, b.conv
    name, email, lang = rng.choice(_CUSTOMERS)
    conv.user, conv.user_name = email, name
    order = _order_no(rng)
    product, price = rng.choice(_PRODUCTS)
    carrier, hub = rng.choice(_CARRIERS), rng.choice(_HUBS)

    b.enter("IdentifyStep")
    b.system(
        "## Role ##\nYou are the customer-support assistant of Northwind Store. Be warm and "
        "concise. Always verify the customer before discussing an order. Never promise a refund "
        "before `issue_refund` succeeded. If the customer asks for a person, call "
        "`escalate_to_human`."
    )
    if xss:
        opener = (
            f"Hi, the order notes for {order} show {XSS_SCRIPT} instead of my delivery "
            "instructions. Is my account hacked?"
        )
    elif lang == "es":
        opener = (
            f"Hola, necesito cambiar la dirección de envío del pedido {order}. "
            "Me mudé la semana pasada a Calle de Alcalá 42, Madrid."
        )
    elif lang == "de":
        opener = (
            f"Guten Tag, meine Bestellung {order} ist beschädigt angekommen. "
            f"Die {product} hat einen Riss im Gehäuse."
        )
    elif lang == "ja":
        opener = f"こんにちは。注文{order}の配送状況を教えてください。まだ届いていません。"
    else:
        opener = rng.choice(
            [
                f"Hi, my order {order} was supposed to arrive on Monday and it still hasn't "
                "shown up.",
                f"I was charged twice for order {order} — {_money(price)} shows up two times "
                "on my card.",
                f"Can I still return the {product} from order {order}? It stopped working "
                "after a week.",
                f"This is the third time I'm contacting you about order {order}. Nobody "
                "answers my emails.",
            ]
        )
    b.user(opener, think=(0.5, 3))
    b.tools(
        (
            "get_customer",
            {"email": email},
            True,
            json.dumps(
                {
                    "customer_id": f"C-{rng.randrange(10000, 99999)}",
                    "name": name,
                    "tier": rng.choice(["standard", "gold", "platinum"]),
                    "orders_last_year": rng.randrange(1, 14),
                },
                ensure_ascii=False,
            ),
        )
    )
    b.remember("customer", {"email": email, "name": name, "verified": True})
    b.checkpoint()

    b.enter("LookupStep")
    ok = fail_at != 0
    status = rng.choice(["in_transit", "delivered", "processing"])
    lookup = (
        json.dumps(
            {
                "order_id": order,
                "status": status,
                "carrier": carrier,
                "last_scan": hub,
                "items": [
                    {"sku": f"SKU-{rng.randrange(1000, 9999)}", "name": product, "price_eur": price}
                ],
                "notes": XSS_SCRIPT if xss else "",
            },
            ensure_ascii=False,
        )
        if ok
        else "Error: orders-api timed out after 10s (GET /v2/orders/" + order + ")"
    )
    b.tools(("lookup_order", {"order_id": order}, ok, lookup))
    b.remember("orderId", order)
    if not ok:
        b.log("error", "tool lookup_order failed: orders-api timed out", tool="lookup_order")
        return
    b.remember("orderStatus", status)
    if xss:
        b.say(
            f"Your account looks fine, {_first(name)}. The notes field of {order} contains "
            f"markup ({XSS_IMG}) that someone pasted into the delivery instructions; it is "
            "shown as plain text and never runs. I have cleared it and flagged it for our "
            "security team."
        )
        b.log("warn", f"sanitizer: suspicious markup in order note {XSS_IMG}", order=order)
        b.remember("flaggedMarkup", f"{XSS_SCRIPT} {XSS_IMG}")
    elif lang == "es":
        b.say(
            f"¡Gracias, {_first(name)}! El pedido {order} todavía no ha salido del almacén, así "
            "que puedo cambiar la dirección. ¿Confirmas Calle de Alcalá 42, 28014 Madrid?"
        )
        b.user("Sí, correcto. ¡Muchas gracias!")
        b.tools(
            (
                "update_shipping_address",
                {"order_id": order, "address": "Calle de Alcalá 42, 28014 Madrid"},
                True,
                "address updated",
            )
        )
        b.say("Listo: la nueva dirección está guardada. Recibirás un correo con el seguimiento.")
    elif lang == "de":
        b.say(
            f"Das tut mir leid, {_first(name)}! Ich habe die Bestellung {order} gefunden. Möchten "
            "Sie einen Ersatz oder eine Erstattung?"
        )
        b.user("Eine Erstattung bitte.")
        b.tools(
            (
                "issue_refund",
                {
                    "order_id": order,
                    "amount": price,
                    "currency": "EUR",
                    "reason": "damaged_in_transit",
                },
                True,
                f"refund re_{rng.randrange(10**7, 10**8)} created: {_money(price)}",
            )
        )
        b.say(f"Erledigt: {_money(price)} werden in 3-5 Werktagen gutgeschrieben.")
    elif lang == "ja":
        b.say(
            f"お問い合わせありがとうございます。ご注文{order}は現在{carrier}で配送中で、"
            f"最新のスキャンは{hub}です。2〜3日以内にお届け予定です。"
        )
    else:
        b.say(
            f"Thanks for waiting, {_first(name)}. Order {order} ({product}) is "
            f"{status.replace('_', ' ')} with {carrier}; the last scan was in {hub}. "
            "What would you like me to do?"
        )
    b.checkpoint()

    b.enter("ResolveStep")
    for i in range(exchanges):
        failing = fail_at is not None and i + 1 >= fail_at
        kind = rng.choice(["refund", "points", "ticket", "kb", "escalate"])
        if kind == "refund":
            b.user(
                rng.choice(
                    [
                        "Please just refund it, I don't want to wait any longer.",
                        "Can you refund the shipping fee at least?",
                        "I'd like my money back for this one.",
                    ]
                )
            )
            amount = price if rng.random() < 0.7 else 4.99
            result = (
                f"refund re_{rng.randrange(10**7, 10**8)} created: {_money(amount)}, "
                "3-5 business days"
                if not failing
                else f"refund rejected: amount exceeds captured total ({_money(amount - 0.01)})"
            )
            b.tools(
                (
                    "issue_refund",
                    {
                        "order_id": order,
                        "amount": amount,
                        "currency": "EUR",
                        "reason": "customer_request",
                    },
                    not failing,
                    result,
                )
            )
            b.remember("refundAmount", amount)
            b.say(
                f"Done — {_money(amount)} is on its way back to your card (3-5 business days)."
                if not failing
                else "The payment system rejected the refund. I've asked a colleague to look "
                "at it manually; you'll hear from us within 24 hours."
            )
        elif kind == "points":
            b.user("Can you also check whether my loyalty points were applied?")
            b.tools(
                (
                    "get_loyalty_balance",
                    {"email": email},
                    not failing,
                    json.dumps({"points": rng.randrange(100, 5000), "pending": 120})
                    if not failing
                    else "Error: loyalty-service returned 503",
                )
            )
            b.say(
                "Yes, the points from this order are pending and will be credited once it is "
                "delivered."
                if not failing
                else "I can't reach the loyalty system right now; the points are not lost, I'll "
                "check again later today."
            )
        elif kind == "ticket":
            b.user("Please open a ticket so this doesn't get lost again.")
            ticket = f"T-{rng.randrange(20000, 99999)}"
            b.tools(
                (
                    "create_ticket",
                    {
                        "subject": f"Order {order}: {product}",
                        "priority": rng.choice(["normal", "high"]),
                    },
                    not failing,
                    f"ticket {ticket} created"
                    if not failing
                    else "Error: helpdesk API 422: field 'priority' must be one of low|normal|high",
                )
            )
            b.remember("ticket", ticket)
            b.say(
                f"Ticket {ticket} is open; you'll get updates by email."
                if not failing
                else "Creating the ticket failed on our side, sorry about that. I've noted "
                "everything in your case file instead."
            )
        elif kind == "kb":
            b.user(f"What's your return policy for a {product}?")
            b.tools(
                (
                    "search_kb",
                    {"query": f"return policy {product}", "top_k": 3},
                    not failing,
                    json.dumps(
                        [
                            {"title": "Returns within 30 days", "score": 0.91},
                            {"title": "Defective electronics", "score": 0.77},
                        ]
                    )
                    if not failing
                    else "Error: 503 Service Unavailable from kb-search",
                )
            )
            b.say(
                "You can return it within 30 days of delivery for a full refund; defective "
                "items are covered for two years. I can send you a prepaid label."
            )
        else:
            b.user("Honestly I'd rather talk to a person.")
            b.tools(
                (
                    "escalate_to_human",
                    {"reason": "customer_request", "order_id": order},
                    not failing,
                    f"handoff queued: position {rng.randrange(1, 9)}, "
                    f"est. wait {rng.randrange(2, 15)} min"
                    if not failing
                    else "Error: no agents available in queue 'tier2' (outside business hours)",
                )
            )
            b.say("I've put you through to a colleague; they can see this whole conversation.")
        b.checkpoint()
        if failing:
            b.log("error", "tool failed in ResolveStep; aborting run", step="ResolveStep")
            return

    b.enter("EndStep")
    b.system("Thank the customer, summarise what was done, and end the chat.")
    b.user(rng.choice(["Thanks, that's all.", "Perfect, thank you!", "Ok. Bye."]))
    b.say(f"You're welcome, {_first(name)}! Have a great day.")
    b.remember("csatAsked", True)
    b.checkpoint()


def _booking(b: _Builder, *, exchanges: int, fail_at: int | None) -> None:
    rng, conv = b.rng, b.conv
    name, email, _ = rng.choice(_CUSTOMERS)
    conv.user, conv.user_name = email, name
    origin, city, area, currency = rng.choice(_TRIPS)
    adults = rng.choice([1, 2, 2, 3, 4])
    month = rng.choice(["May", "June", "September", "October"])
    day = rng.randrange(3, 25)
    nights = rng.randrange(3, 11)

    b.enter("PlannerStep")
    b.system(
        "You are an expert travel consultant for Pico Travel. Collect origin, destination, "
        "dates, travellers and budget, then search flights and hotels. Quote prices in the "
        "traveller's currency when asked. Only book after an explicit confirmation."
    )
    b.user(
        f"Hi! I'd like to plan a trip from {origin} to {city}, leaving {month} {day} for "
        f"{nights} nights, {adults} adult{'s' if adults > 1 else ''}.",
        think=(0.5, 3),
    )
    b.say(
        f"{city} is a great choice! Do you have a budget in mind, and do you prefer economy or "
        "premium economy?"
    )
    b.user(
        rng.choice(
            [
                "Economy is fine, around 2,500 € total.",
                "Premium economy if it's under 4000 USD.",
                "Cheapest possible, we're flexible by a day.",
            ]
        )
    )
    b.remember(
        "travelPlan",
        {
            "origin": origin,
            "destination": city,
            "adults": adults,
            "nights": nights,
            "month": month,
            "day": day,
        },
    )
    b.checkpoint()

    b.enter("FlightStep")
    airlines = rng.sample(_AIRLINES, 3)
    flights = [
        {
            "id": f"F{i + 1}",
            "airline": a,
            "price": rng.randrange(380, 1400),
            "stops": rng.choice([0, 1, 1, 2]),
        }
        for i, a in enumerate(airlines)
    ]
    ok = fail_at != 0
    b.tools(
        (
            "search_flights",
            {"origin": origin, "destination": city, "date": f"{month} {day}", "isReturn": False},
            ok,
            json.dumps(flights, ensure_ascii=False) if ok else "Error: GDS timeout after 15s",
        ),
        (
            "search_flights",
            {
                "origin": city,
                "destination": origin,
                "date": f"{month} {day + nights}",
                "isReturn": True,
            },
            True,
            json.dumps(flights[::-1], ensure_ascii=False),
        ),
    )
    if not ok:
        b.log("error", "engine error: flight search failed after 2 retries", tool="search_flights")
        return
    b.remember("departureFlights", flights)
    cheapest = min(flights, key=lambda f: f["price"])
    b.say(
        "Here are the best options:\n"
        + "\n".join(
            f"- {f['airline']}: {f['price']} € per person, {f['stops']} stop(s)" for f in flights
        )
        + f"\n\nThe cheapest is {cheapest['airline']}. Shall I hold seats?"
    )
    b.user(f"Let's take the {cheapest['airline']} one. Can you find a hotel near {area}?")
    b.tools(
        (
            "hold_seat",
            {"flight_id": cheapest["id"], "passengers": adults},
            True,
            f"seats held until {rng.randrange(10, 23)}:00 UTC tomorrow",
        )
    )
    b.remember("chosenFlight", cheapest["id"])
    b.checkpoint()

    b.enter("HotelStep")
    hotels = [
        {
            "id": f"H{i + 1}",
            "name": h,
            "price_per_night": rng.randrange(70, 420),
            "rating": rng.choice([3.5, 4.0, 4.3, 4.6, 4.8]),
        }
        for i, h in enumerate(rng.sample(_HOTELS, 3))
    ]
    b.tools(
        (
            "search_hotels",
            {"city": city, "near": area, "nights": nights},
            True,
            json.dumps(hotels, ensure_ascii=False),
        )
    )
    b.remember("hotels", hotels)
    pick = hotels[rng.randrange(3)]
    b.say(
        f"I found three hotels near {area}. {pick['name']} ({pick['rating']}★) is "
        f"{pick['price_per_night']} € a night and gets great reviews for breakfast."
    )
    for i in range(exchanges):
        failing = fail_at is not None and i + 1 >= fail_at
        kind = rng.choice(["weather", "currency", "book", "activities"])
        if kind == "weather":
            b.user(f"What's the weather usually like in {city} in {month}?")
            b.tools(
                (
                    "get_weather",
                    {"city": city, "month": month},
                    not failing,
                    json.dumps({"avg_high_c": rng.randrange(14, 31), "rain_days": 6})
                    if not failing
                    else "Error: weather provider quota exceeded (429)",
                )
            )
            b.say(
                "Pleasant: warm afternoons and cooler evenings — pack a light jacket."
                if not failing
                else "The weather service is rate-limited right now; I'll retry in a moment."
            )
        elif kind == "currency":
            b.user(f"How much is the hotel in {currency}?")
            total = pick["price_per_night"] * nights
            b.tools(
                (
                    "convert_currency",
                    {"amount": total, "from": "EUR", "to": currency},
                    not failing,
                    json.dumps(
                        {"amount": round(total * rng.uniform(0.9, 1500), 2), "currency": currency}
                    )
                    if not failing
                    else f"Error: unsupported currency pair EUR/{currency}",
                )
            )
            b.say(
                f"That comes to about {total} € for {nights} nights, converted above."
                if not failing
                else "I couldn't convert that currency pair, sorry."
            )
        elif kind == "activities":
            b.user("Any activities you'd recommend for a rainy day?")
            b.tools(
                (
                    "search_activities",
                    {"location": city, "indoor": True},
                    not failing,
                    json.dumps(
                        [
                            {"name": "Food market tour", "price": 45},
                            {"name": "Museum pass (48h)", "price": 38},
                        ]
                    )
                    if not failing
                    else "Error: activities index unavailable",
                )
            )
            b.say("A food market tour and a 48-hour museum pass are both great on a rainy day.")
        else:
            b.user(f"Book {pick['name']} for {nights} nights please.")
            conf = f"HX-{rng.randrange(10000, 99999)}"
            b.tools(
                (
                    "book_hotel",
                    {"hotel_id": pick["id"], "guests": adults, "nights": nights},
                    not failing,
                    f"confirmed: {conf}"
                    if not failing
                    else "Error: rate no longer available (room sold out)",
                )
            )
            if not failing:
                b.remember("booking", {"hotel": pick["name"], "confirmation": conf})
            b.say(
                f"Booked! Your confirmation number is {conf}."
                if not failing
                else "That rate just sold out. Shall I look at the other two hotels?"
            )
        b.checkpoint()
        if failing:
            b.log("error", "engine error: booking step exceeded retry budget", step="HotelStep")
            return

    b.enter("ConfirmStep")
    b.system("Summarise the itinerary and thank the traveller.")
    b.user("That's everything, thanks!")
    b.say(
        {
            "itinerary": {
                "from": origin,
                "to": city,
                "flight": cheapest["airline"],
                "hotel": pick["name"],
                "nights": nights,
            },
            "status": "confirmed",
        }
        if rng.random() < 0.3
        else f"Have a wonderful trip to {city}! Your itinerary is in your inbox."
    )
    b.checkpoint()


def _triage(b: _Builder, *, exchanges: int, fail_at: int | None) -> None:
    rng, conv = b.rng, b.conv
    reporter = rng.choice(_ENGINEERS)
    conv.user, conv.user_name = f"{reporter}@northwind.example", reporter
    service, dependency, symptom = rng.choice(_SERVICES)
    hhmm = f"{rng.randrange(0, 24):02d}:{rng.randrange(0, 60):02d}"

    b.enter("IntakeStep")
    b.system(
        "You are the on-call triage assistant. Gather the symptom, check service health and "
        "logs, classify severity (sev1-sev4), page the owning team for sev1/sev2 and open an "
        "incident. Answer with the classification as JSON when asked."
    )
    b.user(
        rng.choice(_INCIDENT_OPENERS).format(pct=rng.randrange(5, 95), hhmm=hhmm), think=(0.5, 3)
    )
    b.remember("reporter", reporter)
    b.checkpoint()

    b.enter("DiagnoseStep")
    ok = fail_at != 0
    b.tools(
        (
            "check_service_status",
            {"service": service},
            True,
            json.dumps(
                {
                    "service": service,
                    "status": "degraded",
                    "error_rate": round(rng.uniform(0.02, 0.4), 3),
                    "p95_ms": rng.randrange(400, 5000),
                }
            ),
        ),
        (
            "query_logs",
            {"service": service, "since": "30m", "level": "error"},
            ok,
            f"{rng.randrange(50, 900)} errors; top: {symptom} ({dependency})"
            if ok
            else "Error: log query exceeded 30s budget",
        ),
    )
    if not ok:
        b.log("error", "engine error: diagnose step could not read logs", step="DiagnoseStep")
        return
    severity = rng.choice(["sev2", "sev2", "sev3", "sev1", "sev4"])
    b.say(
        {
            "category": "dependency",
            "severity": severity,
            "suspected": dependency,
            "confidence": round(rng.uniform(0.55, 0.97), 2),
        }
    )
    b.remember("classification", {"severity": severity, "suspected": dependency})
    b.checkpoint()

    b.enter("RouteStep")
    for i in range(exchanges):
        failing = fail_at is not None and i + 1 >= fail_at
        kind = rng.choice(["page", "incident", "deploys", "update"])
        if kind == "page":
            b.user("Page the owning team please.")
            b.tools(
                (
                    "page_oncall",
                    {"team": dependency.split("-")[0], "severity": severity},
                    not failing,
                    f"paged {rng.choice(_ENGINEERS)}, ack pending"
                    if not failing
                    else "Error: PagerDuty API rate limited (429)",
                )
            )
            b.say(
                "Paged; I'll post here when they acknowledge."
                if not failing
                else "Paging failed (rate limited). Please call the on-call number directly."
            )
        elif kind == "incident":
            b.user("Open an incident for this.")
            inc = f"INC-{rng.randrange(1000, 9999)}"
            b.tools(
                (
                    "create_incident",
                    {"title": f"{service}: {symptom}", "severity": severity},
                    not failing,
                    f"{inc} created" if not failing else "Error: statuspage token expired",
                )
            )
            b.remember("incident", inc)
            b.say(
                f"{inc} is open and linked to this conversation."
                if not failing
                else "I could not open the incident: the status page token has expired."
            )
        elif kind == "deploys":
            b.user(f"Was anything deployed to {service} or {dependency} recently?")
            b.tools(
                (
                    "list_deploys",
                    {"services": [service, dependency], "since": "6h"},
                    not failing,
                    json.dumps(
                        [
                            {
                                "service": dependency,
                                "version": "2.14.1",
                                "at": hhmm,
                                "by": rng.choice(_ENGINEERS),
                            }
                        ]
                    )
                    if not failing
                    else "Error: deploy history unavailable (500)",
                )
            )
            b.say(
                f"Yes: {dependency} 2.14.1 went out at {hhmm}, right when errors started. "
                "Rolling it back is the fastest mitigation."
            )
        else:
            b.user("Any change in the error rate?")
            b.tools(
                (
                    "check_service_status",
                    {"service": service},
                    not failing,
                    json.dumps(
                        {
                            "service": service,
                            "status": rng.choice(["degraded", "ok"]),
                            "error_rate": round(rng.uniform(0.0, 0.1), 3),
                        }
                    )
                    if not failing
                    else "Error: metrics backend timeout",
                )
            )
            b.say("Error rate is dropping since the rollback started.")
        b.checkpoint()
        if failing:
            b.log(
                "error", "engine error: routing step aborted after tool failure", step="RouteStep"
            )
            return
    b.user("Thanks, we're stable now. Closing.")
    b.say("Great. I've added the timeline to the incident and marked it mitigated.")
    b.checkpoint()


def _analysis(b: _Builder, *, exchanges: int, fail_at: int | None) -> None:
    rng, conv = b.rng, b.conv
    analyst = rng.choice(_ANALYSTS)
    conv.user, conv.user_name = analyst, analyst

    b.enter("analysis")
    b.system(
        "You are a data analysis assistant with read-only SQL access to the warehouse "
        "(PostgreSQL dialect). Inspect schemas before querying, never guess column names, and "
        "explain results briefly with numbers."
    )
    for i in range(max(exchanges, 1)):
        failing = fail_at is not None and i + 1 >= fail_at
        question, table, chart = rng.choice(_ANALYSIS_QUESTIONS)
        b.user(question, think=(0.5, 3) if i == 0 else (20, 240))
        if i == 0 or rng.random() < 0.4:
            b.tools(
                (
                    "describe_table",
                    {"table": table},
                    True,
                    json.dumps({"table": table, "columns": _TABLES[table]}),
                )
            )
        if rng.random() < 0.25 or failing:
            b.tools(
                (
                    "run_sql",
                    {"query": f"SELECT region_name, sum(total_eur) FROM {table} GROUP BY 1"},
                    False,
                    'Error: column "region_name" does not exist\nLINE 1: SELECT region_name, '
                    "sum(total_eur) ...",
                )
            )
            if failing:
                b.say(
                    "The query failed and I can't reach the warehouse to retry; "
                    "let's pick this up later."
                )
                b.checkpoint()
                return
        rows = [
            [f"2026-W{w:02d}", rng.choice(["EMEA", "AMER", "APAC"]), rng.randrange(20000, 180000)]
            for w in rng.sample(range(1, 52), 4)
        ]
        b.tools(
            (
                "run_sql",
                {
                    "query": f"SELECT date_trunc('week', created_at) AS week, region, "
                    f"sum(total_eur) FROM {table} GROUP BY 1, 2 ORDER BY 1"
                },
                True,
                json.dumps(
                    {
                        "columns": ["week", "region", "revenue_eur"],
                        "rows": rows,
                        "row_count": len(rows),
                        "elapsed_ms": rng.randrange(40, 2400),
                    }
                ),
            )
        )
        table_md = "\n".join(f"| {r[0]} | {r[1]} | {r[2]:,} € |" for r in rows)
        b.say(
            f"Here is what the data shows:\n\n| week | region | revenue |\n|---|---|---|\n"
            f"{table_md}\n\nThe trend is broadly stable with a dip in week {rows[0][0][-2:]}."
        )
        if rng.random() < 0.4:
            b.user("Plot that please.")
            b.tools(
                (
                    "plot_chart",
                    {"kind": chart, "x": "week", "y": "revenue_eur"},
                    True,
                    f"chart saved: charts/{table}_{chart}_{rng.randrange(100, 999)}.png",
                )
            )
            b.say(f"Done — a {chart} chart is attached.")
        b.checkpoint()


def _alert_stream(b: _Builder, *, alerts: int) -> None:
    """A triage bot fed by the alert pipeline: one session, many short exchanges."""
    rng, conv = b.rng, b.conv
    conv.user, conv.user_name = "alertmanager", "alertmanager"
    conv.context_window = 8  # alerts are independent; the flow keeps a summary, not history
    b.enter("IntakeStep")
    b.system("You receive alerts one at a time. Deduplicate, classify, and route each alert.")
    b.enter("DiagnoseStep")
    for i in range(alerts):
        service, dependency, symptom = rng.choice(_SERVICES)
        b.user(
            f"[ALERT] {symptom} on {service} (via {dependency}); firing for "
            f"{rng.randrange(1, 30)}m",
            think=(30, 220),
        )
        ok = rng.random() > 0.06
        b.tools(
            (
                "check_service_status",
                {"service": service},
                ok,
                json.dumps({"service": service, "status": rng.choice(["ok", "degraded"])})
                if ok
                else "Error: metrics backend timeout",
            )
        )
        verdict = (
            "duplicate of an open alert"
            if rng.random() < 0.5
            else "new; routed to " + dependency.split("-")[0]
        )
        b.say(f"#{i + 1}: {service} — {verdict}.")
        if i % 50 == 49:
            b.log("log", f"batch {i // 50 + 1} done: {i + 1} alerts processed")
        if not ok and rng.random() < 0.3:
            b.log("warn", "model retry attempt 1", attempt=1)
        b.checkpoint()


# --- the scenarios, and scripting one conversation ---------------------------------------------


@dataclass(frozen=True)
class Scenario:
    script: Callable[..., None]
    flow: str  # the Picoflow flow that runs it ("": chat transcripts only)
    app: str  # the app a chat transcript names in its metadata
    namespace: str  # the memory namespace of the main conversation


SCENARIOS = {
    "support": Scenario(_support, flow="SupportFlow", app="support-bot", namespace="support"),
    "booking": Scenario(_booking, flow="BookingFlow", app="trip-planner", namespace="travelPlan"),
    "triage": Scenario(_triage, flow="TriageFlow", app="ops-triage", namespace="triage"),
    "analysis": Scenario(_analysis, flow="", app="analytics-copilot", namespace=""),
}
# The closing steps keep their messages in a namespace of their own.
_CLOSING_NAMESPACES = {"EndStep": "end", "ConfirmStep": "end"}
# Every step a script may enter; each gets the flow's model or, sometimes, another one.
_STEPS = (
    "IdentifyStep",
    "LookupStep",
    "ResolveStep",
    "EndStep",
    "PlannerStep",
    "FlightStep",
    "HotelStep",
    "ConfirmStep",
    "IntakeStep",
    "DiagnoseStep",
    "RouteStep",
    "analysis",
)


def converse(
    rng: random.Random, *, scenario: str, status: str, exchanges: int, special: str = ""
) -> Conversation:
    """Script one conversation: ``exchanges`` after the opening, ending as ``status`` says
    (an aborted one fails somewhere, a running one stops part-way). ``special`` names one of
    the data set's set pieces: "alert-stream", "xss" or "long"."""
    flow_model = rng.choice(MODELS)
    plot = SCENARIOS[scenario]
    conv = Conversation(
        flow=plot.flow,
        user="",
        user_name="",
        step_models={"*": flow_model},
        status=status,
        app=plot.app,
        namespace=plot.namespace,
        step_namespaces=dict(_CLOSING_NAMESPACES),
        csat_survey=rng.random() < 0.3,
    )
    for step in _STEPS:
        conv.step_models[step] = flow_model if rng.random() < 0.7 else rng.choice(MODELS)
    builder = _Builder(rng, conv)
    fail_at = None
    if status == "aborted":
        fail_at = rng.randrange(0, exchanges + 1)
    if special == "alert-stream":
        _alert_stream(builder, alerts=500)
    elif special == "xss":
        _support(builder, exchanges=exchanges, fail_at=None, xss=True)
    else:
        plot.script(builder, exchanges=exchanges, fail_at=fail_at)
    if status == "aborted" and not any(level == "error" for _, level, _, _ in conv.logs):
        builder.log("error", "engine error: model provider returned 500 twice; run aborted")
    if status == "running" and not special and len(conv.checkpoints) > 2:
        # Still in progress: the conversation so far, up to some exchange.
        keep = rng.choice(conv.checkpoints[1:-1])
        conv.turns = conv.turns[:keep]
        conv.checkpoints = [c for c in conv.checkpoints if c <= keep]
    if status == "running" and conv.turns[-1].role == "assistant" and rng.random() < 0.5:
        # Still running: the customer has just written and the model is thinking.
        builder.user("Hello? Are you still there?")
        builder.checkpoint()
    if rng.random() < 0.08:
        builder.log("warn", f"hallucinated tool: {rng.choice(['apply_coupon', 'send_sms'])}")
    if rng.random() < 0.1:
        builder.log("warn", "model retry attempt 1 (429 rate limited)", attempt=1)
    return conv
