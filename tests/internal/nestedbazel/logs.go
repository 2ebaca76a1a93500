package nestedbazel

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Spawn is what the tests read of a SpawnExec in Bazel's JSON execution
// log (--execution_log_json_file: a stream of JSON objects).
type Spawn struct {
	Mnemonic string `json:"mnemonic"`
	Runner   string `json:"runner"`
	// Hit is Bazel 7's cache_hit, RemoteCacheHit its older name.
	Hit            bool   `json:"cacheHit"`
	RemoteCacheHit bool   `json:"remoteCacheHit"`
	TargetLabel    string `json:"targetLabel"`
	ExitCode       int    `json:"exitCode"`
	// Digest is the action's (remotable spawns): what a remote execution
	// of it in the gRPC log names.
	Digest struct {
		Hash string `json:"hash"`
	} `json:"digest"`
	Metrics struct {
		TotalTime string `json:"totalTime"`
	} `json:"metrics"`
	ListedOutputs []string `json:"listedOutputs"`
}

// CacheHit tells whether the spawn's result came from the remote cache.
func (s Spawn) CacheHit() bool { return s.Hit || s.RemoteCacheHit || s.Runner == "remote cache hit" }

// Label names the spawn: its target, else its first output.
func (s Spawn) Label() string {
	if s.TargetLabel != "" {
		return s.TargetLabel
	}
	if len(s.ListedOutputs) > 0 {
		return s.ListedOutputs[0]
	}
	return "?"
}

// ReadSpawns reads a JSON execution log; one without any spawn is an
// error (nothing can be concluded from it).
func ReadSpawns(path string) ([]Spawn, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var spawns []Spawn
	dec := json.NewDecoder(f)
	for {
		var s Spawn
		if err := dec.Decode(&s); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: spawn %d: %w", path, len(spawns)+1, err)
		}
		spawns = append(spawns, s)
	}
	if len(spawns) == 0 {
		return nil, fmt.Errorf("%s lists no spawns at all", path)
	}
	return spawns, nil
}

// Count counts spawns per mnemonic.
func Count(spawns []Spawn) map[string]int {
	counts := map[string]int{}
	for _, s := range spawns {
		counts[s.Mnemonic]++
	}
	return counts
}

// Execution is one finished remote execution in Bazel's gRPC log: the
// action, and the ExecutedActionMetadata.worker of its ActionResult (the
// server's name for the worker that ran it; Buildbarn's is the JSON of the
// worker's workerId).
type Execution struct {
	ActionHash string
	Worker     string
	ExitCode   int64
}

// Field numbers on the path from a gRPC log entry to the worker
// (src/main/protobuf/remote_execution_log.proto, REv2's
// remote_execution.proto, google.longrunning's operations.proto).
const (
	logEntryDetails        = 4 // LogEntry.details: RpcCallDetails
	callExecute            = 7 // RpcCallDetails.execute: ExecuteDetails
	callWaitExecution      = 9 // RpcCallDetails.wait_execution: WaitExecutionDetails
	detailsRequest         = 1 // ExecuteDetails.request: ExecuteRequest
	detailsResponses       = 2 // ExecuteDetails.responses: repeated Operation
	requestActionDigest    = 6 // ExecuteRequest.action_digest: Digest
	digestHash             = 1 // Digest.hash
	operationMetadata      = 2 // Operation.metadata: Any (ExecuteOperationMetadata)
	operationDone          = 3 // Operation.done
	operationResponse      = 5 // Operation.response: Any (ExecuteResponse)
	anyValue               = 2 // Any.value
	opMetadataAction       = 2 // ExecuteOperationMetadata.action_digest: Digest
	responseResult         = 1 // ExecuteResponse.result: ActionResult
	resultExitCode         = 4 // ActionResult.exit_code
	resultMetadata         = 9 // ActionResult.execution_metadata: ExecutedActionMetadata
	executedMetadataWorker = 1 // ExecutedActionMetadata.worker
)

// maxEntry bounds one gRPC log entry (a corrupt length must not make us
// allocate without end).
const maxEntry = 64 << 20

// ReadExecutions reads a gRPC log (--remote_grpc_log: length-delimited
// LogEntry protos) and returns the finished Execute and WaitExecution
// calls, in order.
func ReadExecutions(path string) ([]Execution, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseExecutions(b)
}

func parseExecutions(b []byte) ([]Execution, error) {
	var execs []Execution
	for n := 1; len(b) > 0; n++ {
		size, k := binary.Uvarint(b)
		if k <= 0 || size > maxEntry || size > uint64(len(b)-k) {
			return nil, fmt.Errorf("gRPC log entry %d: bad length prefix", n)
		}
		entry := b[k : k+int(size)]
		b = b[k+int(size):]
		for _, details := range values(entry, logEntryDetails) {
			for _, call := range append(values(details, callExecute), values(details, callWaitExecution)...) {
				e, ok, err := execution(call)
				if err != nil {
					return nil, fmt.Errorf("gRPC log entry %d: %w", n, err)
				}
				if ok {
					execs = append(execs, e)
				}
			}
		}
	}
	return execs, nil
}

// execution reads Execute/WaitExecutionDetails: ok when an operation in it
// is done with a result.
func execution(call []byte) (e Execution, ok bool, err error) {
	for _, req := range values(call, detailsRequest) {
		for _, d := range values(req, requestActionDigest) {
			e.ActionHash = string(last(values(d, digestHash)))
		}
	}
	for _, op := range values(call, detailsResponses) {
		if done := varints(op, operationDone); len(done) == 0 || done[len(done)-1] == 0 {
			continue
		}
		for _, md := range values(op, operationMetadata) {
			for _, d := range values(last(values(md, anyValue)), opMetadataAction) {
				if e.ActionHash == "" {
					e.ActionHash = string(last(values(d, digestHash)))
				}
			}
		}
		for _, resp := range values(op, operationResponse) {
			for _, result := range values(last(values(resp, anyValue)), responseResult) {
				ok = true
				if codes := varints(result, resultExitCode); len(codes) > 0 {
					e.ExitCode = int64(int32(codes[len(codes)-1]))
				}
				for _, md := range values(result, resultMetadata) {
					e.Worker = string(last(values(md, executedMetadataWorker)))
				}
			}
		}
	}
	if ok && e.ActionHash == "" {
		return e, false, errors.New("a finished execution names no action digest")
	}
	return e, ok, nil
}

func last(bs [][]byte) []byte {
	if len(bs) == 0 {
		return nil
	}
	return bs[len(bs)-1]
}

// Protobuf wire types.
const (
	wireVarint = 0
	wire64     = 1
	wireBytes  = 2
	wire32     = 5
)

// field is one field of a protobuf message on the wire.
type field struct {
	num   uint64
	typ   int
	value uint64 // varints
	bytes []byte // length-delimited
}

// fields splits a protobuf message into its fields; malformed input ends
// the walk with what was read (values and varints then see fewer fields,
// and the caller's checks fail).
func fields(b []byte) []field {
	var fs []field
	for len(b) > 0 {
		tag, k := binary.Uvarint(b)
		if k <= 0 {
			return fs
		}
		b = b[k:]
		f := field{num: tag >> 3, typ: int(tag & 7)}
		switch f.typ {
		case wireVarint:
			v, k := binary.Uvarint(b)
			if k <= 0 {
				return fs
			}
			f.value, b = v, b[k:]
		case wire64:
			if len(b) < 8 {
				return fs
			}
			b = b[8:]
		case wire32:
			if len(b) < 4 {
				return fs
			}
			b = b[4:]
		case wireBytes:
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)-k) {
				return fs
			}
			f.bytes, b = b[k:k+int(n)], b[k+int(n):]
		default:
			return fs
		}
		fs = append(fs, f)
	}
	return fs
}

// values are the length-delimited values of field num, in order.
func values(msg []byte, num uint64) [][]byte {
	var vs [][]byte
	for _, f := range fields(msg) {
		if f.num == num && f.typ == wireBytes {
			vs = append(vs, f.bytes)
		}
	}
	return vs
}

// varints are the varint values of field num, in order.
func varints(msg []byte, num uint64) []uint64 {
	var vs []uint64
	for _, f := range fields(msg) {
		if f.num == num && f.typ == wireVarint {
			vs = append(vs, f.value)
		}
	}
	return vs
}
