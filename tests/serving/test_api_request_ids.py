"""Request ids drawn in bulk: the same shape as uuid4().hex, never repeated."""
import threading

from serving.api.request import REQUEST_ID_PATTERN
from serving.api.request_ids import RequestIds


def test_ids_are_32_hex_digits_and_unique_across_refills():
    ids = RequestIds()
    drawn = [ids.next() for _ in range(1000)]  # several refills of 256
    assert all(len(i) == 32 and int(i, 16) >= 0 and REQUEST_ID_PATTERN.match(i) for i in drawn)
    assert len(set(drawn)) == len(drawn)


def test_ids_are_unique_across_threads():
    ids = RequestIds()
    drawn = []

    def draw():
        mine = [ids.next() for _ in range(500)]
        drawn.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(drawn) == 2000 and len(set(drawn)) == 2000
