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
//	3      1    flags, must be 0
//	4      4    payload length, big endian, at most MaxPayload (and the
//	            per-type limit, see MaxPayloadFor)
//	8      4    CRC-32C (Castagnoli) of header bytes 0..7 followed by the payload
//
// A decoder checks magic, flags, type, the length limit (before allocating
// anything) and the checksum; any mismatch is a decode error wrapping
// ErrBadFrame, ErrFrameTooLarge or ErrUnknownFrame. New frame types need a new
// protocol version: a decoder rejects unknown types.
//
// Payloads:
//
//	Hello   guest→host  8-byte magic "RGVMPROT", uint16 big-endian version,
//	                    role (Role), declared data streams (Streams, control
//	                    stream only), then an optional UTF-8 agent string
//	                    (MaxAgent bytes)
//	Stdout  guest→host  a chunk of the test's stdout (at most MaxChunk bytes)
//	Stderr  guest→host  a chunk of the test's stderr (at most MaxChunk bytes)
//	Event   guest→host  one `go test -json` (test2json) JSON object, no newline
//	Diag    guest→host  one init diagnostic line, UTF-8, no newline
//	File    guest→host  uint16 path length, a clean relative path, data
//	                    (ValidOutputPath; the chunks of a file are consecutive;
//	                    below CoverageOutputDir: a GuestConfig.CoverageDir file)
//	End     guest→host  empty; ends a data stream
//	Verdict guest→host  JSON encoding of Verdict
//	Ack     host→guest  empty; acknowledges the verdict
//	Request host→guest  one byte (RequestStacks)
//
// # Streams (version 2)
//
// A session is one control stream and up to four data streams, each its own
// connection (vsock: every one dials the host's port), so a flood of output
// never delays the verdict. Each stream starts with a Hello naming its Role.
// The control Hello declares the data streams (Streams); every data frame
// type whose role was not declared travels on the control stream (over
// virtio-serial, a single connection, everything does). Data streams end
// with End; nothing may follow it.
//
// # Session
//
//  1. The host listens (vsock: before it boots the VM) and writes the
//     GuestConfig to ConfigPath in the initramfs.
//  2. The guest init reads the config and connects its data streams, then
//     the control stream (vsock dial to CID 2, HostCID, on Channel.Port), or
//     opens the serial device Channel.Device (one control stream).
//  3. Every stream sends its Hello(Version, Role) first.
//  4. Guest → host: output frames on their streams, streamed live while the
//     test runs; the host reads every stream concurrently. The host may send
//     Request(Stacks) on the control stream when it is being stopped.
//  5. Guest → host: End on every data stream and exactly one Verdict on the
//     control stream, after all output of the test.
//  6. Host → guest: Ack, once the verdict arrived and every declared stream
//     ended (at most CollectOptions.DrainTimeout after the verdict).
//  7. The guest syncs, unmounts and powers off only after it got the Ack, or
//     after a bounded wait (GuestConfig.AckTimeout) when no Ack comes.
//  8. Nothing follows the Verdict on the control stream: the host treats any
//     frame after it as a failure, and the end of the stream (EOF) after it
//     as the normal end.
//
// A run passes only when the host got a well-formed control Hello with a
// known version, well-formed streams that were declared, each once, each
// ended, then exactly one well-formed Verdict saying pass with exit code 0,
// and nothing garbled anywhere: otherwise CollectStreams returns an error
// wrapping one of the sentinel errors below, and SessionResult.Pass is false.
//
// Host side: CollectStreams (Collect for one connection). Guest side:
// NewGuestStreams (NewGuest for one connection), Guest.Stdout, Guest.Stderr,
// Guest.Diag (never blocks), Guest.Event, Guest.File, Guest.Requests,
// Guest.Finish (End, Verdict, wait for the Ack). Lower level: Writer,
// Reader, Frame. Debug connections (DebugRequest) are separate, host → guest.
package protocol
