# SPDX-License-Identifier: GPL-2.0-or-later
"""Card rules: Luhn, IIN brands (incl. Mastercard 2-series, Maestro, UnionPay), expiry edges, security
code length by brand, and the CardDetails object (brand + last 4 only, wipe, no pickling)."""
from __future__ import annotations

import copy
import datetime as dt
import pickle

import pytest
try:
    from hypothesis import given
    from hypothesis import strategies as st
except ImportError:  # a host without hypothesis: its property test skips (naming it), the rest of the file runs
    given = st = None

from dtmfguard.capture.card import (
    CardDetails, CardWipedError, card_brand, check_card_number, check_expiry, check_security_code,
    luhn_valid, parse_expiry, security_code_length,
)


@pytest.mark.parametrize("number, valid", [
    ("79927398713", True),          # the textbook example
    ("79927398710", False),
    ("4111111111111111", True),
    ("4111111111111112", False),
    ("0000000000000000", True),
    ("378282246310005", True),
    ("378282246310006", False),
    ("", False),
    ("4111 1111 1111 1111", False),  # digits only
    ("41111111111111a1", False),
])
def test_luhn_table(number, valid):
    assert luhn_valid(number) is valid


if given is not None:
    @given(st.text(alphabet="0123456789", min_size=12, max_size=19), st.data())
    def test_luhn_detects_every_single_digit_error(number, data):
        # Fix the check digit so the number is valid, then change one digit: Luhn must notice.
        body = number[:-1]
        check = next(d for d in "0123456789" if luhn_valid(body + d))
        valid = body + check
        position = data.draw(st.integers(0, len(valid) - 1))
        replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != valid[position]]))
        assert luhn_valid(valid)
        assert not luhn_valid(valid[:position] + replacement + valid[position + 1:])
else:
    def test_luhn_detects_every_single_digit_error():
        pytest.skip("needs the Python package hypothesis (pip install hypothesis)")


@pytest.mark.parametrize("pan, brand", [
    ("4111111111111111", "visa"), ("4012888888881881", "visa"), ("4222222222222", "visa"),
    ("4111111111111111110", "visa"),
    ("5555555555554444", "mastercard"), ("5105105105105100", "mastercard"),
    ("2223003122003222", "mastercard"), ("2221000000000009", "mastercard"), ("2720992720992729", "mastercard"),
    ("378282246310005", "amex"), ("371449635398431", "amex"),
    ("6011111111111117", "discover"), ("6011000990139424", "discover"), ("6500000000000002", "discover"),
    ("3530111333300000", "jcb"), ("3566002020360505", "jcb"),
    ("30569309025904", "diners"), ("36227206271667", "diners"), ("38520000023237", "diners"),
    ("6200000000000005", "unionpay"), ("6250941006528599", "unionpay"),
    ("6759649826438453", "maestro"), ("6799990100000000019", "maestro"), ("5018000000000009", "maestro"),
])
def test_brand_of_published_test_numbers(pan, brand):
    assert card_brand(pan) == brand
    assert check_card_number(pan) is None


@pytest.mark.parametrize("prefix, brand", [
    # range edges: Mastercard 2-series 2221-2720, JCB 3528-3589, Diners 300-305, Discover 644-649
    ("2220", None), ("2221", "mastercard"), ("2720", "mastercard"), ("2721", None),
    ("50", "maestro"), ("51", "mastercard"), ("55", "mastercard"), ("56", "maestro"),
    ("3527", None), ("3528", "jcb"), ("3589", "jcb"), ("3590", None),
    ("299", None), ("300", "diners"), ("305", "diners"), ("306", None), ("3095", "diners"),
    ("6011", "discover"), ("6012", "maestro"), ("643", "maestro"), ("644", "discover"), ("649", "discover"),
    ("62", "unionpay"), ("65", "discover"), ("63", "maestro"), ("67", "maestro"),
    ("34", "amex"), ("35", None), ("37", "amex"), ("4", "visa"), ("1", None), ("9", None),
])
def test_brand_range_edges(prefix, brand):
    assert card_brand(prefix + "0" * (16 - len(prefix))) == brand


def _with_check_digit(body: str) -> str:
    return body + next(d for d in "0123456789" if luhn_valid(body + d))


@pytest.mark.parametrize("pan, reason_part", [
    ("41111111111", "too short"),
    ("41111111111111111111", "too long"),
    ("4111111111111112", "Luhn"),
    ("3782822463100050", "Luhn"),
    (_with_check_digit("555555555555444400"), "wrong number of digits for mastercard"),  # Luhn-valid, 19
    (_with_check_digit("3782822463100"), "wrong number of digits for amex"),              # Luhn-valid, 14
])
def test_card_number_reasons(pan, reason_part):
    reason = check_card_number(pan)
    assert reason is not None and reason_part in reason
    assert pan not in reason and pan[:6] not in reason


TODAY = dt.date(2026, 11, 23)


@pytest.mark.parametrize("mmyy, today, ok", [
    ("1126", TODAY, True),                      # the current month is still valid
    ("1026", TODAY, False),                     # last month
    ("1226", TODAY, True),
    ("0127", TODAY, True),                      # year rollover
    ("1225", TODAY, False),
    ("1226", dt.date(2026, 12, 31), True),      # last day of the expiry month
    ("1226", dt.date(2027, 1, 1), False),       # the day after
    ("0026", TODAY, False), ("1326", TODAY, False), ("9999", TODAY, False),
    ("1146", TODAY, True),                      # 20 years ahead: still accepted
    ("0147", TODAY, False),                     # beyond 20 years: a typing error
    ("112", TODAY, False), ("11266", TODAY, False), ("11a6", TODAY, False),
])
def test_expiry_edges(mmyy, today, ok):
    reason = check_expiry(mmyy, today)
    assert (reason is None) is ok
    if reason is not None:
        assert mmyy not in reason


def test_parse_expiry():
    assert parse_expiry("0139") == (1, 2039)
    with pytest.raises(ValueError, match="01-12") as info:
        parse_expiry("1339")
    assert "1339" not in str(info.value)


@pytest.mark.parametrize("brand, code, ok", [
    ("visa", "123", True), ("visa", "1234", False), ("visa", "12", False),
    ("mastercard", "123", True), ("discover", "123", True), ("jcb", "123", True), ("diners", "123", True),
    ("unionpay", "123", True), ("maestro", "123", True),
    ("amex", "1234", True), ("amex", "123", False), ("amex", "12345", False),
    (None, "123", True), ("visa", "12a", False),
])
def test_security_code_length_by_brand(brand, code, ok):
    assert security_code_length(brand) == (4 if brand == "amex" else 3)
    reason = check_security_code(code, brand)
    assert (reason is None) is ok
    if reason:
        assert code not in reason


def test_card_details_shows_brand_and_last4_only():
    card = CardDetails("4111111111111111", "1139", "847")
    for text in (repr(card), str(card), f"{card}", f"{card!r}", repr([card]), repr({"c": card})):
        assert "1111" in text and "visa" in text
        assert "411111111111" not in text and "1139" not in text and "847" not in text
    assert card.pan == "4111111111111111" and card.expiry == "1139" and card.security_code == "847"
    assert card.expiry_month_year == (11, 2039)


def test_card_details_wipe_zeroes_buffers_and_blocks_reads():
    card = CardDetails(bytearray(b"4111111111111111"), "1139", "847")
    buffers = (card._pan, card._expiry, card._security_code)
    card.wipe()
    assert all(len(b) == 0 for b in buffers)
    assert card.wiped and card.brand == "visa" and card.last4 == "1111"
    with pytest.raises(CardWipedError) as info:
        _ = card.pan
    assert "4111" not in str(info.value)


def test_card_details_refuses_pickling_and_copying():
    card = CardDetails("4111111111111111", "1139", "847")
    with pytest.raises(TypeError):
        pickle.dumps(card)
    with pytest.raises(TypeError):
        copy.copy(card)


@pytest.mark.parametrize("args", [("41111111111111x1",), ("411111",), ("4111111111111111", "11/39"),
                                  ("4111111111111111", "1139", "84x")])
def test_card_details_bad_input_errors_without_digits(args):
    with pytest.raises(ValueError) as info:
        CardDetails(*args)
    message = str(info.value)
    assert "4111111" not in message and "1139" not in message and "84" not in message


def test_redact_removes_this_cards_digits():
    card = CardDetails("4111111111111111", "1139", "847")
    text = card.redact("got 4111111111111111 exp 1139 cvv 847, bin 411111111111")
    assert "4111111111111111" not in text and "1139" not in text and "847" not in text
    assert text.count("[redacted]") == 4
