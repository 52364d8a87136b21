// A real SMTP server on 127.0.0.1 for the mail tests: prints {"port": n} once listening, then
// one JSON line per message received (envelope, headers, text, attachments as byte arrays).
// Recipients on the domain "reject.example" are refused with 550.
import { SMTPServer } from "smtp-server";
import { simpleParser } from "mailparser";

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS"],
  onRcptTo(address, _session, callback) {
    if (address.address.endsWith("@reject.example")) {
      const error = new Error("mailbox unavailable");
      error.responseCode = 550;
      return callback(error);
    }
    callback();
  },
  async onData(stream, session, callback) {
    try {
      const mail = await simpleParser(stream);
      console.log(JSON.stringify({
        mailFrom: session.envelope.mailFrom.address,
        rcptTo: session.envelope.rcptTo.map((r) => r.address),
        from: mail.from?.text,
        to: mail.to?.text,
        subject: mail.subject,
        text: mail.text,
        attachments: mail.attachments.map((a) => ({
          filename: a.filename,
          contentType: a.contentType,
          content: [...a.content],
        })),
      }));
      callback();
    } catch (error) {
      callback(error);
    }
  },
});

server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: server.server.address().port }));
});
process.stdin.on("end", () => server.close(() => process.exit(0)));
process.stdin.resume();
