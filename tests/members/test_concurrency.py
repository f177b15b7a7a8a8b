"""Two channels bringing in the same new person at the same moment make one member."""

import threading

import pytest
from django.db import connection

from members.models import Identity, Member
from members.services.identity import identity_key, member_resolve_with_retry
from scrm.core.pii import phone_digest


@pytest.mark.django_db(transaction=True)
def test_simultaneous_arrivals_of_one_new_person_make_one_member() -> None:
    barrier = threading.Barrier(4)
    results: list[int] = []
    errors: list[BaseException] = []

    def arrive(source: str) -> None:
        try:
            barrier.wait(timeout=10)
            resolution = member_resolve_with_retry(
                identities=[identity_key("phone", "13812345678")], source=source
            )
            assert resolution.member is not None
            results.append(resolution.member.pk)
        except BaseException as exc:  # reported below, with the thread's own traceback
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=arrive, args=(source,))
        for source in ("pos", "tmall", "jd", "mini_program")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == 4 and len(set(results)) == 1
    assert Member.objects.count() == 1
    assert Identity.objects.filter(kind="phone", value=phone_digest("+8613812345678")).count() == 1
