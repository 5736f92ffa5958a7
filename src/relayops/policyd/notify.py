"""Notice mails, sent in the background so no decision waits for SMTP.

Notices go into a bounded asyncio queue; one worker sends them with smtplib
in a thread (`--notify-smtp HOST:PORT`, plain SMTP to a local MTA or sink).
One message, two envelope recipients: the customer's contact address and,
when the rules name a mailbox domain, the customer's IMAP mailbox on the relay
(the local MTA delivers that one over LMTP to Dovecot).
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
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid

from relayops.policyd.rules import Notice

log = logging.getLogger("relayops.policyd.notify")


class NotifyStats:
    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0
        self.dropped = 0


def build_message(notice: Notice) -> Message:
    """The notice as a message; with an attachment, multipart/mixed with a message/rfc822 part.

    The attached report is parsed with the lenient compat32 policy and written
    back by the same generator, so its headers go out as they came in (the
    modern policy would refold and could refuse malformed ones).
    """
    msg: Message
    if notice.attachment is None:
        msg = EmailMessage()
        msg.set_content(notice.body)
    else:
        msg = MIMEMultipart("mixed")
        msg.attach(MIMEText(notice.body, "plain", "utf-8"))
        original = MIMEMessage(message_from_bytes(notice.attachment))
        original.add_header("Content-Disposition", "attachment", filename="complaint.eml")
        msg.attach(original)
    msg["From"] = notice.sender
    msg["To"] = notice.to
    msg["Subject"] = notice.subject
    msg["Date"] = formatdate(localtime=False)
    domain = notice.sender.rpartition("@")[2] or None
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    return msg


def recipients(notice: Notice) -> list[str]:
    """The contact address, then the customer's mailbox on the relay (if any)."""
    return [notice.to] + ([notice.mailbox] if notice.mailbox else [])


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
            # as_bytes(): an attached report may carry raw 8-bit header bytes.
            smtp.sendmail(notice.sender, recipients(notice), build_message(notice).as_bytes())
