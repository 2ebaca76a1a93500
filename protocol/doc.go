// Package protocol is the host↔guest protocol of rules_go_vm: the framing, the
// messages and the session rules shared by the guest init (package guestinit,
// PID 1 inside the VM) and the host runner, plus the guest configuration
// contract (GuestConfig) the host writes into the initramfs.
//
// The protocol is transport-agnostic: it runs over any io.ReadWriter, in
// practice a virtio-vsock connection (guest dials CID 2, the host) or a
// virtio-serial port (/dev/vportNpM). Neither transport has a usable
// half-close, so message boundaries never rely on EOF: every message is a
// length-prefixed frame.
//
// # Frames
//
// Every frame is a 12-byte header followed by a payload:
//
//	offset size field
//	0      2    magic 0x56 0x4D ("VM")
//	2      1    type (FrameHello, FrameStdout, ...)
//	3      1    flags, must be 0 in version 1
//	4      4    payload length, big endian, at most MaxPayload (and the
//	            per-type limit, see MaxPayloadFor)
//	8      4    CRC-32C (Castagnoli) of header bytes 0..7 followed by the payload
//
// A decoder checks magic, flags, type, the length limit (before allocating
// anything) and the checksum; any mismatch is a decode error wrapping
// ErrBadFrame, ErrFrameTooLarge or ErrUnknownFrame. New frame types need a new
// protocol version: a version-1 decoder rejects unknown types.
//
// Payloads:
//
//	Hello   guest→host  8-byte magic "RGVMPROT", uint16 big-endian version,
//	                    then an optional UTF-8 agent string (MaxAgent bytes)
//	Stdout  guest→host  a chunk of the test's stdout (at most MaxChunk bytes)
//	Stderr  guest→host  a chunk of the test's stderr (at most MaxChunk bytes)
//	Event   guest→host  one `go test -json` (test2json) JSON object, no newline
//	Diag    guest→host  one init diagnostic line, UTF-8, no newline
//	Verdict guest→host  JSON encoding of Verdict
//	Ack     host→guest  empty; acknowledges the verdict
//
// # Session
//
//  1. The host listens (vsock: before it boots the VM) and writes the
//     GuestConfig to ConfigPath in the initramfs.
//  2. The guest init reads the config and connects: vsock dial to CID 2
//     (HostCID) on Channel.Port, or open the serial device Channel.Device.
//  3. Guest → host: Hello(Version). It must be the first frame.
//  4. Guest → host: any number of Stdout, Stderr, Event and Diag frames,
//     interleaved, streamed live while the test runs.
//  5. Guest → host: exactly one Verdict, after all output of the test.
//  6. Host → guest: Ack (see Collect).
//  7. The guest syncs, unmounts and powers off only after it got the Ack, or
//     after a bounded wait (GuestConfig.AckTimeout) when no Ack comes.
//  8. Nothing follows the Verdict on the guest side: the host treats any
//     frame after it as a failure, and the end of the stream (EOF) after it
//     as the normal end.
//
// A run passes only when the host got a well-formed Hello with a known
// version, then exactly one well-formed Verdict saying pass with exit code 0,
// and nothing garbled in between: a missing, truncated, garbled or duplicated
// verdict, an unknown version or frames after the verdict make Collect return
// an error wrapping one of the sentinel errors below, and Result.Pass false.
//
// Host side: Collect. Guest side: NewGuest, Guest.Stdout, Guest.Stderr,
// Guest.Diag, Guest.Event, Guest.Finish (SendVerdict + wait for the Ack).
// Lower level: Writer, Reader, Frame.
package protocol
