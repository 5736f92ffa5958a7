"""Warning and limit mails, sent in the background so no decision waits for SMTP.

Notices go into a bounded asyncio queue; one worker sends them with smtplib
in a thread (`--notify-smtp HOST:PORT`, plain SMTP to a local MTA or sink).
A full queue drops the notice with a log line rather than grow without bound.
Whether a notice is due was decided by the store (claimed once per customer,
day and kind across all daemons), so a notice that fails after its retries is
logged, not re-claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from relayops.policyd.rules import Notice

log = logging.getLogger("relayops.policyd.notify")


class NotifyStats:
    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0
        self.dropped = 0


def build_message(notice: Notice) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = notice.sender
    msg["To"] = notice.to
    msg["Subject"] = notice.subject
    msg["Date"] = formatdate(localtime=False)
    domain = notice.sender.rpartition("@")[2] or None
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg.set_content(notice.body)
    return msg


class Notifier:
    def __init__(
        self,
        smtp: tuple[str, int] | None,
        *,
        queue_size: int = 1000,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 2.0,
    ) -> None:
        self.smtp = smtp
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.stats = NotifyStats()
        self._queue: asyncio.Queue[Notice] = asyncio.Queue(queue_size)
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def close(self, *, grace: float = 5.0) -> None:
        """Send what is queued (within `grace` seconds), then stop."""
        if self._worker is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker

    def submit(self, notice: Notice) -> None:
        try:
            self._queue.put_nowait(notice)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            log.error(
                "event=notice_dropped kind=%s customer=%s to=%s why=queue_full",
                notice.kind,
                notice.customer,
                notice.to,
            )

    async def _run(self) -> None:
        while True:
            notice = await self._queue.get()
            try:
                await self._deliver(notice)
            finally:
                self._queue.task_done()

    async def _deliver(self, notice: Notice) -> None:
        if self.smtp is None:
            log.warning(
                "event=notice_not_sent kind=%s customer=%s to=%s why='no --notify-smtp'",
                notice.kind,
                notice.customer,
                notice.to,
            )
            return
        for attempt in range(1, self.attempts + 1):
            try:
                await asyncio.to_thread(self._send, notice)
            except (OSError, smtplib.SMTPException) as exc:
                if attempt == self.attempts:
                    self.stats.failed += 1
                    log.error(
                        "event=notice_failed kind=%s customer=%s to=%s error=%r",
                        notice.kind,
                        notice.customer,
                        notice.to,
                        str(exc),
                    )
                    return
                await asyncio.sleep(self.backoff * attempt)
            else:
                self.stats.sent += 1
                log.info(
                    "event=notice_sent kind=%s customer=%s to=%s",
                    notice.kind,
                    notice.customer,
                    notice.to,
                )
                return

    def _send(self, notice: Notice) -> None:
        assert self.smtp is not None
        host, port = self.smtp
        with smtplib.SMTP(host, port, timeout=self.timeout) as smtp:
            smtp.send_message(build_message(notice))
