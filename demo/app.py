# A small service for `make demo`: a worker pool computing while the main
# thread waits, so a dump shows busy and idle threads with real names.
import threading
import time


def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


def crunch(stop):
    while not stop.is_set():
        fibonacci(18)


def idle_worker(stop):
    while not stop.is_set():
        time.sleep(0.05)


def main():
    stop = threading.Event()
    threads = [threading.Thread(target=crunch, args=(stop,), name="cruncher"),
               threading.Thread(target=idle_worker, args=(stop,), name="sleeper")]
    for t in threads:
        t.start()
    print("ready", flush=True)
    try:
        time.sleep(600)
    finally:
        stop.set()


if __name__ == "__main__":
    main()
