import pytest

from members.phones import InvalidPhone, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812341234", "+8613812341234"),
        ("138 1234 1234", "+8613812341234"),
        ("138-1234-1234", "+8613812341234"),
        ("+86 138-1234-1234", "+8613812341234"),
        ("+86 13812341234", "+8613812341234"),
        ("(+86)138.1234.1234", "+8613812341234"),
        ("0086 13812341234", "+8613812341234"),
        ("8613812341234", "+8613812341234"),
        ("１３８１２３４１２３４", "+8613812341234"),
        ("＋８６　１３８－１２３４－１２３４", "+8613812341234"),
        ("  19912345678\t", "+8619912345678"),
        ("13812341234.0", "+8613812341234"),
        (13812341234, "+8613812341234"),
        ("+852 9123 4567", "+85291234567"),
        ("+1 (415) 555-2671", "+14155552671"),
    ],
)
def test_common_forms_become_e164(raw: object, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "phone_empty"),
        ("   ", "phone_empty"),
        (None, "phone_empty"),
        ("12812341234", "phone_invalid"),  # no mobile network starts with 12
        ("1381234123", "phone_invalid"),  # ten digits
        ("138123412345", "phone_invalid"),  # twelve digits
        ("138-abcd-1234", "phone_invalid"),
        ("+86 12812341234", "phone_invalid"),
        ("021-12345678", "phone_invalid"),  # a landline is not a member's mobile
        ("+123", "phone_invalid"),
    ],
)
def test_bad_numbers_are_refused_with_a_reason(raw: object, code: str) -> None:
    with pytest.raises(InvalidPhone) as error:
        normalize_phone(raw)
    assert error.value.code == code
    assert error.value.messages[0]
