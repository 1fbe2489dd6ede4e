import Testing
@testable import WeirGateway
@testable import WeirHTTP

private let get = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
private let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"

@Suite struct SessionFramingTests {
    @Test func keepAliveExchangeParksTheServerConnectionAndWaitsForTheNextRequest() {
        var h = SessionHarness()
        h.client(get)
        #expect(h.routes == [false])
        #expect(h.did(.beginAttempt(server: 0)) && h.did(.connect(server: 0, allowPooled: true)))
        h.server(ok)
        #expect(h.sentToClient == Array("hi".utf8))
        #expect(h.did(.parkUpstream) && h.exchangesEnded == [200] && h.attemptsOpen == 0)
        #expect(h.awaitingNextRequest && h.did(.armTimer(milliseconds: 60_000)))
    }

    @Test func headResponseHasNoBodyWhateverItsLength() {
        var h = SessionHarness()
        h.client("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        h.server("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        #expect(h.exchangesEnded == [200] && h.did(.parkUpstream) && h.awaitingNextRequest)
    }

    @Test(arguments: [204, 304])
    func noContentAndNotModifiedEndAtTheHead(status: Int) {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 \(status) X\r\n\r\n")
        #expect(h.exchangesEnded == [status] && h.awaitingNextRequest)
    }

    @Test func interimResponsesAreRelayedThenTheFinalOne() {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n")
        #expect(h.count { $0 == .sendInterimHead } == 2 && h.plans.isEmpty)
        h.server(ok)
        #expect(h.plans.count == 1 && h.exchangesEnded == [200])
    }

    @Test func interimResponsesAreNotRelayedToHTTP10Clients() {
        var h = SessionHarness()
        h.client("GET / HTTP/1.0\r\n\r\n")
        h.server("HTTP/1.1 100 Continue\r\n\r\n" + ok)
        #expect(h.count { $0 == .sendInterimHead } == 0 && h.exchangesEnded == [200])
    }

    @Test func closeDelimitedResponseEndsWithTheServersClose() {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 200 OK\r\n\r\nabc")
        #expect(h.plans.first?.closeAfter == true && h.plans.first?.connection == .close)
        h.server("def")
        h.event(.upstreamEndOfStream)
        #expect(h.sentToClient == Array("abcdef".utf8))
        #expect(h.exchangesEnded == [200] && h.did(.closeUpstream) && h.closedWith == true)
    }

    @Test func chunkedResponseIsDechunkedForHTTP10() {
        var h = SessionHarness()
        h.client("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        h.server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        #expect(h.plans.first == ResponsePlan(framing: .dechunked, connection: .close, closeAfter: true, dataOnly: true,
                                               rewrite: false, upstreamReusable: true))
        #expect(h.sentToClient == Array("abcde".utf8) && h.closedWith == true)
    }

    @Test func chunkedResponseGoesThroughVerbatimForHTTP11() {
        var h = SessionHarness()
        h.client(get)
        let body = "3\r\nabc\r\n0\r\nT: 1\r\n\r\n"
        h.server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        #expect(h.sentToClient == Array(body.utf8) && h.awaitingNextRequest)
    }

    @Test func rewrittenBodyIsRechunkedForHTTP11AndCloseDelimitedForHTTP10() {
        var h = SessionHarness()
        h.routings = [.forward(SessionHarness.server(0, rewrite: ["text/html"]))]
        h.client(get)
        h.server("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        #expect(h.plans.first?.framing == .rechunked && h.plans.first?.rewrite == true && h.plans.first?.dataOnly == true)
        #expect(h.sentToClient == Array("abc".utf8) && h.did(.endResponseBody))

        var old = SessionHarness()
        old.routings = [.forward(SessionHarness.server(0, rewrite: ["text/html"]))]
        old.client("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        old.server("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\nabc")
        #expect(old.plans.first?.framing == .closeDelimited && old.closedWith == true)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() {
        var h = SessionHarness()
        h.client(get + "GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(h.routes.count == 1)   // the second waits for the first response
        h.server(ok)
        #expect(h.routes.count == 2 && h.exchangesEnded == [200])
        h.server("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        #expect(h.exchangesEnded == [200, 201] && h.awaitingNextRequest)
    }

    @Test func requestBodyIsForwardedChunkedOrByLength() {
        var h = SessionHarness()
        h.client("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel")
        h.client("loGET")
        #expect(h.sentToServer == Array("hello".utf8))
        #expect(h.clientInput == Array("GET".utf8))   // the next request waits

        var c = SessionHarness()
        let body = "2\r\nab\r\n0\r\n\r\n"
        c.client("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        #expect(c.sentToServer == Array(body.utf8))
    }

    @Test func upgradeBecomesATunnelBothWays() {
        var h = SessionHarness()
        h.client("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
        h.server("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nfrom-server")
        #expect(h.machine.isTunnel && h.exchangesEnded == [101] && h.attemptsOpen == 0)
        #expect(h.sentToClient == Array("from-server".utf8))
        h.client("from-client")
        #expect(h.sentToServer == Array("from-client".utf8))
        h.event(.clientEndOfStream)
        #expect(h.did(.flushTunnel) && h.closedWith == true)
    }

    @Test func switchingProtocolsUnaskedIsABadGateway() {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n")
        #expect(h.errorsSent == [502] && !h.machine.isTunnel)
    }

    // Reading the client while its response is awaited: needed for pipelined requests and for a
    // body still coming, not for a whole request on a connection that closes after its answer.

    @Test func keepAliveClientIsStillReadWhileItsResponseIsAwaited() {
        var h = SessionHarness()
        h.client(get)
        #expect(h.machine.server == 0 && h.machine.readsClient)
    }

    @Test func wholeRequestThatClosesTheConnectionStopsReadingUntilTheAnswer() {
        var h = SessionHarness()
        h.client("GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        #expect(h.machine.server == 0 && !h.machine.readsClient)
        h.server(ok)
        #expect(h.sentToClient == Array("hi".utf8) && h.exchangesEnded == [200] && h.closedWith == true)
    }

    @Test func http10RequestStopsReadingToo() {
        var h = SessionHarness()
        h.client("GET /a HTTP/1.0\r\n\r\n")
        #expect(h.machine.server == 0 && !h.machine.readsClient)
    }

    @Test func closingRequestWithABodyStillComingIsReadUntilTheBodyIsComplete() {
        var h = SessionHarness()
        h.client("POST /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 6\r\n\r\nabc")
        #expect(h.machine.server == 0 && h.machine.readsClient)
        h.client("def")
        #expect(h.sentToServer.suffix(6) == Array("abcdef".utf8) && !h.machine.readsClient)
    }

    @Test func closingUpgradeRequestKeepsReading() {
        var h = SessionHarness()
        h.client("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\nUpgrade: websocket\r\n\r\n")
        #expect(h.machine.server == 0 && h.machine.readsClient)
    }

    @Test func aClosedSessionHandsItsHeadBuffersToTheNextOne() {
        var h = SessionHarness()
        h.client("GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        h.server(ok)
        #expect(h.isClosed)
        let storage = h.machine.surrenderStorage()
        // The buffers the heads were parsed into, not new empty ones.
        #expect(storage.request.bytes.capacity > 0 && storage.request.fields.capacity > 0)
        #expect(storage.response.bytes.capacity > 0)
        var next = SessionHarness()
        next.machine = SessionMachine(limits: SessionHarness.limits, requestStorage: storage.request,
                                      responseStorage: storage.response)
        next.client("GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
        next.server(ok)
        #expect(next.machine.request.map { $0.string($0.target) } == "/b")
        #expect(next.sentToClient == Array("hi".utf8) && next.exchangesEnded == [200])
    }
}

@Suite struct SessionDefectTests {
    /// A server that sends 100 Continue and then closes: the client hears 502, not a silent close.
    @Test func continueThenCloseIsABadGateway() {
        var h = SessionHarness()
        h.client("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n")
        h.server("HTTP/1.1 100 Continue\r\n\r\n")
        h.event(.upstreamEndOfStream)
        #expect(h.errorsSent == [502] && h.exchangesEnded == [502])
        #expect(h.did(.serverFailed(server: 0)))
    }

    @Test func continueThenSilenceIsAGatewayTimeoutAtTheResponseDeadline() {
        var h = SessionHarness()
        h.client(get)
        #expect(!h.did(.armTimer(milliseconds: 30_000)))   // connecting: upstream_connect runs
        h.event(.upstreamConnected)
        #expect(h.did(.armTimer(milliseconds: 30_000)))
        h.server("HTTP/1.1 102 Processing\r\n\r\n")
        h.server("HTTP/1.1 102 Processing\r\n\r\n")
        // Interims do not push the deadline back.
        #expect(h.count { $0 == .armTimer(milliseconds: 30_000) } == 1)
        h.event(.timerFired(clientHandshaking: false))
        #expect(h.errorsSent == [504] && h.exchangesEnded == [504])
    }

    @Test func continueThenResetIsRetriedElsewhereWhenIdempotent() {
        var h = SessionHarness()
        h.retryRouting = .forward(SessionHarness.server(1))
        h.client(get)
        h.server("HTTP/1.1 100 Continue\r\n\r\n")
        h.event(.upstreamFailed("reset"))
        #expect(h.routes == [false, true] && h.did(.beginAttempt(server: 1)) && h.errorsSent.isEmpty)
        h.server(ok)
        #expect(h.exchangesEnded == [200] && h.attemptsOpen == 0)
    }

    @Test func perExchangeStateIsFreshForTheNextRequest() {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 100 Continue\r\n\r\n" + ok)
        h.client(get)
        #expect(h.machine.upstreamWindow > 256)   // awaiting a head again, not a body
        h.server("HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nx")
        #expect(h.exchangesEnded == [200, 404] && h.count { $0 == .sendInterimHead } == 1)
    }

    @Test func tooManyInterimResponsesAreABadGateway() {
        var h = SessionHarness()
        h.client(get)
        h.server(String(repeating: "HTTP/1.1 100 Continue\r\n\r\n", count: 17))
        #expect(h.count { $0 == .sendInterimHead } == 16 && h.errorsSent == [502])
    }

    /// The response deadline starts when the request body is completely sent; the upload itself is
    /// guarded by the client-body idle timeout, which blames the client, not the server.
    @Test func slowUploadHasNoResponseDeadlineUntilItsBodyIsSent() {
        var h = SessionHarness()
        h.client("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\na")
        h.event(.upstreamConnected)
        #expect(!h.did(.armTimer(milliseconds: 30_000)))
        #expect(h.did(.setClientTimeouts(read: 60_000, write: 60_000)))
        h.client("bc")
        #expect(!h.did(.armTimer(milliseconds: 30_000)))
        h.client("d")
        #expect(h.did(.armTimer(milliseconds: 30_000)) && h.did(.setClientTimeouts(read: nil, write: 60_000)))
    }

    @Test func stalledUploadIsARequestTimeoutWithoutBlamingTheServer() {
        var h = SessionHarness()
        h.client("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\na")
        h.event(.clientReadTimeout)
        #expect(h.errorsSent == [408] && h.closedWith == true)
        #expect(!h.did(.serverFailed(server: 0)) && h.attemptsOpen == 0)
    }

    /// The last response may still wait in the client's output when the client's FIN comes: it is
    /// sent; a reset ends the connection at once.
    @Test func endBetweenRequestsFlushesWhatIsLeftAndAResetDoesNot() {
        var ended = SessionHarness()
        ended.client(get)
        ended.server(ok)
        ended.event(.clientEndOfStream)
        #expect(ended.closedWith == true && ended.machine.closedCleanly)

        var reset = SessionHarness()
        reset.client(get)
        reset.server(ok)
        reset.event(.clientFailed(handshake: false))
        #expect(reset.closedWith == false)
    }

    @Test func upgradeWhoseClientLeavesBeforeTheAnswerReleasesBothAtOnce() {
        var h = SessionHarness()
        h.client("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
        h.event(.clientEndOfStream)
        #expect(h.did(.closeUpstream) && h.closedWith == false && h.attemptsOpen == 0)
    }

    @Test func halfCloseAfterAPlainRequestStillGetsTheAnswer() {
        var h = SessionHarness()
        h.client(get)
        h.event(.clientEndOfStream)
        #expect(!h.isClosed)
        h.server(ok)
        #expect(h.exchangesEnded == [200] && h.closedWith == true)
    }

    @Test func malformedResponseKeepsTheClientConnectionWhenTheRequestWasRead() {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 2x0 Nope\r\n\r\n")
        #expect(h.errorsSent == [502] && h.awaitingNextRequest && !h.isClosed)
        #expect(h.actions.contains { if case .sendError(502, _, true) = $0 { return true } else { return false } })
        #expect(h.errors.first?.reason.hasPrefix("invalid response from server s0:") == true)
        h.client(get)
        #expect(h.routes.count == 2)
    }

    @Test func malformedRequestIsA400AndTheConnectionCloses() {
        var h = SessionHarness()
        h.client("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        #expect(h.errorsSent == [400] && h.closedWith == true && h.routes.isEmpty)
        #expect(h.did(.count(.badRequest)))
    }

    /// Found by fuzzing: a server that answers early, then a request body that turns out malformed
    /// (or stalls), must not give the client a second answer after the first head.
    @Test func bodyFailureAfterAnEarlyAnswerEndsTheConnectionWithoutASecondAnswer() {
        for failure in ["zz\r\n", nil] {
            var h = SessionHarness()
            h.client("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n")
            h.server("HTTP/1.1 413 Content Too Large\r\nContent-Length: 1\r\n\r\n")
            if let failure { h.client(failure) } else { h.event(.clientReadTimeout) }
            #expect(h.errorsSent.isEmpty && h.plans.count == 1 && h.closedWith == true && h.attemptsOpen == 0)
            #expect(h.did(.count(.abortedResponse)))
        }
    }

    @Test func malformedChunkedRequestBodyIsA400() {
        var h = SessionHarness()
        h.client("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        #expect(h.errorsSent == [400] && h.closedWith == true && h.attemptsOpen == 0 && h.did(.closeUpstream))
    }
}

@Suite struct SessionRetryAndTimeoutTests {
    @Test func stalePooledConnectionIsReconnectedOnceToTheSameServer() {
        var h = SessionHarness()
        h.attachPooled = true
        h.client(get)
        h.event(.upstreamEndOfStream)
        #expect(h.did(.count(.retriedOnStaleConnection)) && h.did(.connect(server: 0, allowPooled: false)))
        #expect(!h.did(.serverFailed(server: 0)) && h.connects == 2)
        h.event(.upstreamEndOfStream)   // a fresh connection failing is the server's fault
        #expect(h.errorsSent == [502] && h.did(.serverFailed(server: 0)))
    }

    @Test func refusedConnectIsRetriedOnAnotherServer() {
        var h = SessionHarness()
        h.retryRouting = .forward(SessionHarness.server(1))
        h.client("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
        h.event(.upstreamFailed("connection refused"))
        #expect(h.did(.count(.retry)) && h.did(.beginAttempt(server: 1)) && h.did(.endAttempt(server: 0)))
    }

    @Test func nonIdempotentRequestIsNotRetriedOnceTheServerHadIt() {
        var h = SessionHarness()
        h.retryRouting = .forward(SessionHarness.server(1))
        h.client("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
        h.event(.upstreamConnected)
        h.event(.upstreamEndOfStream)
        #expect(h.routes == [false] && h.errorsSent == [502])
    }

    @Test func retriesStopAtThePoolsBudget() {
        var h = SessionHarness()
        h.routings = [.forward(SessionHarness.server(0, retries: 0))]
        h.retryRouting = .forward(SessionHarness.server(1))
        h.client(get)
        h.event(.upstreamFailed("refused"))
        #expect(h.routes == [false] && h.errorsSent == [502])
    }

    @Test func connectTimeoutWithNoOtherServerIsAGatewayTimeout() {
        var h = SessionHarness()
        h.client(get)
        #expect(h.did(.setUpstreamTimeouts(read: nil, write: 5_000)))
        h.event(.upstreamWriteTimeout)
        #expect(h.routes == [false, true] && h.errorsSent == [504])
        #expect(h.errors.first?.reason == "no connect to server s0 within 5 s")
    }

    @Test func responseTimeoutIsA504AndCountsAgainstTheServer() {
        var h = SessionHarness()
        h.client(get)
        h.event(.upstreamConnected)
        h.event(.timerFired(clientHandshaking: false))
        #expect(h.errorsSent == [504] && h.count { $0 == .serverFailed(server: 0) } == 1 && h.did(.count(.gatewayTimeout)))
    }

    @Test func serverThatStopsTakingTheRequestBodyIsAGatewayTimeout() {
        var h = SessionHarness()
        h.client("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc")
        h.event(.upstreamConnected)
        h.event(.upstreamWriteTimeout)
        #expect(h.errorsSent == [504] && h.closedWith == true)   // the body was not read: close
        #expect(h.errors.first?.reason == "no answer from server s0 within 30 s")
    }

    @Test func clientThatStopsReadingIsDroppedWithoutAnAnswer() {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        h.event(.clientWriteTimeout)
        #expect(h.errorsSent.isEmpty && h.closedWith == false && h.exchangesEnded == [200] && h.attemptsOpen == 0)
    }

    @Test func tunnelIdleOnEitherSideEndsTheTunnel() {
        for idle in [SessionEvent.clientReadTimeout, .upstreamReadTimeout, .upstreamWriteTimeout] {
            var h = SessionHarness()
            h.client("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
            h.server("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
            #expect(h.did(.setClientTimeouts(read: 300_000, write: 300_000)))
            h.event(idle)
            #expect(h.did(.flushTunnel) && h.closedWith == true)
        }
    }

    @Test func serverSilentInTheMiddleOfABodyAbortsTheResponse() {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        h.event(.upstreamReadTimeout)
        #expect(h.did(.count(.abortedResponse)) && h.closedWith == true && h.errorsSent.isEmpty)
    }

    @Test func truncatedBodyAbortsTheResponse() {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        h.event(.upstreamEndOfStream)
        #expect(h.did(.count(.abortedResponse)) && h.closedWith == true && h.exchangesEnded == [200])
    }

    @Test func headTimerClosesAnIdleConnectionSilentlyAndAnswersAPartialHeadWith408() {
        var idle = SessionHarness()
        idle.event(.timerFired(clientHandshaking: false))
        #expect(idle.errorsSent.isEmpty && idle.closedWith == false)

        var partial = SessionHarness()
        partial.client("GET / HT")
        partial.event(.timerFired(clientHandshaking: false))
        #expect(partial.errorsSent == [408] && partial.closedWith == true)

        var tls = SessionHarness()
        tls.event(.timerFired(clientHandshaking: true))
        #expect(tls.did(.count(.tlsHandshakeTimeout)) && tls.closedWith == false)
    }

    @Test func firstByteOfTheNextRequestStartsTheHeaderDeadline() {
        var h = SessionHarness()
        h.client(get)
        h.server(ok)
        h.client("GET")
        #expect(h.actions.last == .armTimer(milliseconds: 10_000))
    }

    @Test func drainClosesIdleSessionsAndLetsBusyOnesFinish() {
        var idle = SessionHarness()
        idle.client(get)
        idle.server(ok)
        idle.event(.drain)
        #expect(idle.closedWith == true)   // flushed: the response may not have left the output yet
        #expect(idle.machine.closedCleanly)   // nothing is expected from the client: no linger

        var busy = SessionHarness()
        busy.client(get)
        busy.event(.drain)
        #expect(!busy.isClosed)
        busy.server(ok)
        #expect(busy.exchangesEnded == [200] && busy.closedWith == true)
        #expect(busy.plans.first?.connection == .close)
    }

    /// A connection accepted just before the drain (an upgrade's hand-over) is not reset: its first
    /// request is answered, with Connection: close.
    @Test func drainLetsAConnectionThatHasNotSentItsFirstRequestYetHaveOneExchange() {
        var fresh = SessionHarness()
        fresh.event(.drain)
        #expect(!fresh.isClosed)
        fresh.client(get)
        fresh.server(ok)
        #expect(fresh.exchangesEnded == [200] && fresh.closedWith == true)
        #expect(fresh.plans.first?.connection == .close)
    }

    @Test func clientLeavingMidExchangeIsLogged499AndReleasesTheServer() {
        var h = SessionHarness()
        h.client("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab")
        h.event(.clientEndOfStream)
        #expect(h.exchangesEnded == [499] && h.attemptsOpen == 0 && h.closedWith == false)
    }
}

@Suite struct SessionLocalAnswerTests {
    @Test func answeredRequestsBodyIsDroppedThenTheNextRequestIsRead() {
        var h = SessionHarness()
        h.routings = [.answered(status: 307, keepAlive: true), .forward(SessionHarness.server(0))]
        h.client("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello" + get)
        #expect(h.exchangesEnded == [307] && h.sentToServer.isEmpty)
        #expect(h.routes.count == 2)
    }

    @Test func answeredRequestWithATooLargeBodyClosesTheConnection() {
        var h = SessionHarness()
        h.routings = [.answered(status: 307, keepAlive: true)]
        h.client("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n" + String(repeating: "x", count: 2000))
        #expect(h.closedWith == true)
    }

    @Test func rejectIsAnsweredAndCloses() {
        var h = SessionHarness()
        h.routings = [.reject(status: 503, reason: "nothing", retryAfter: 5)]
        h.client(get)
        #expect(h.did(.sendError(status: 503, retryAfter: 5, keepAlive: false)) && h.errors.first?.reason == "nothing")
        #expect(h.did(.count(.unavailable)) && h.closedWith == true)
    }

    @Test func queuedRequestStopsReadingAndGivesUpAtItsDeadline() {
        var h = SessionHarness()
        h.routings = [.queued]
        h.client(get)
        #expect(!h.machine.readsClient)
        h.event(.queueRetry(timedOut: true))
        #expect(h.errorsSent == [503] && h.closedWith == true)
    }

    @Test func queuedRequestWhoseClientLeavesIsDequeued() {
        var h = SessionHarness()
        h.routings = [.queued]
        h.client(get)
        h.event(.clientEndOfStream)
        #expect(h.did(.dequeue) && h.exchangesEnded == [499])
    }
}

@Suite struct ResponsePlanTests {
    private func facts(status: Int = 200, framing: BodyFraming = .contentLength(1), keepAlive: Bool = true,
                       http10: Bool = false, close: Bool = false, complete: Bool = true, draining: Bool = false,
                       rewrite: Bool = false) -> ResponsePlan.Facts {
        .init(status: status, framing: framing, serverKeepAlive: keepAlive, isUpgrade: status == 101, clientIsHTTP10: http10,
              closeRequested: close, requestComplete: complete, draining: draining, rewriteWanted: rewrite)
    }

    @Test func keptAliveHTTP11SaysNothingAndHTTP10SaysKeepAlive() {
        #expect(ResponsePlan.make(facts()).connection == .none)
        #expect(ResponsePlan.make(facts(http10: true)).connection == .keepAlive)
    }

    @Test func closeWhenAskedDrainingOrTheRequestIsIncomplete() {
        for f in [facts(close: true), facts(draining: true), facts(complete: false)] {
            let plan = ResponsePlan.make(f)
            #expect(plan.closeAfter && plan.connection == .close)
        }
        #expect(!ResponsePlan.make(facts(complete: false)).upstreamReusable)
    }

    @Test func closeDelimitedAndDechunkedBodiesClose() {
        #expect(ResponsePlan.make(facts(framing: .untilClose)).closeAfter)
        let plan = ResponsePlan.make(facts(framing: .chunked, http10: true))
        #expect(plan.framing == .dechunked && plan.dataOnly && plan.closeAfter)
    }

    @Test func rewriteRechunksOrClosesAndNeverAppliesToAnEmptyBody() {
        let plan = ResponsePlan.make(facts(framing: .contentLength(9), rewrite: true))
        #expect(plan.framing == .rechunked && plan.rewrite && !plan.dataOnly && !plan.closeAfter)
        #expect(ResponsePlan.make(facts(framing: .chunked, http10: true, rewrite: true)).framing == .closeDelimited)
        #expect(!ResponsePlan.make(facts(framing: .none, rewrite: true)).rewrite)
    }

    @Test func upgradeKeepsConnectionUpgrade() {
        let plan = ResponsePlan.make(facts(status: 101, framing: .none))
        #expect(plan.connection == .upgrade && !plan.upstreamReusable)
    }
}

@Suite struct RetryPolicyTests {
    private func attempt(pooled: Bool = false, reconnected: Bool = false, body: Int = 0, idempotent: Bool = true,
                         attempts: Int = 1, retries: Int = 1, interim: Bool = false) -> RetryPolicy.Attempt {
        .init(pooled: pooled, reconnected: reconnected, bodyBytesSent: body, idempotent: idempotent, attempts: attempts,
              retries: retries, sawInterim: interim)
    }

    @Test func stalePooledConnectionReconnectsOnce() {
        #expect(RetryPolicy.decide(.closedBeforeResponse, attempt(pooled: true)) == .reconnect)
        #expect(RetryPolicy.decide(.failedBeforeResponse("reset"), attempt(pooled: true)) == .reconnect)
        #expect(RetryPolicy.decide(.closedBeforeResponse, attempt(pooled: true, reconnected: true)) == .tryAnotherServer)
        #expect(RetryPolicy.decide(.closedBeforeResponse, attempt(pooled: true, interim: true)) == .tryAnotherServer)
    }

    @Test func connectFailuresMoveOnWhateverTheMethod() {
        #expect(RetryPolicy.decide(.connectFailed("refused"), attempt(idempotent: false)) == .tryAnotherServer)
        #expect(RetryPolicy.decide(.connectTimeout, attempt(idempotent: false)) == .tryAnotherServer)
        #expect(RetryPolicy.decide(.connectTimeout, attempt(attempts: 2)) == .answer(status: 504))
    }

    @Test func aServerThatHadTheRequestIsReplacedOnlyForIdempotentMethodsWithoutBody() {
        #expect(RetryPolicy.decide(.closedBeforeResponse, attempt()) == .tryAnotherServer)
        #expect(RetryPolicy.decide(.closedBeforeResponse, attempt(idempotent: false)) == .answer(status: 502))
        #expect(RetryPolicy.decide(.closedBeforeResponse, attempt(body: 1)) == .answer(status: 502))
        #expect(RetryPolicy.decide(.connectFailed("x"), attempt(body: 1)) == .answer(status: 502))
    }

    @Test func timeoutsAfterSendingAndInvalidResponsesAreAnswered() {
        #expect(RetryPolicy.decide(.responseTimeout, attempt()) == .answer(status: 504))
        #expect(RetryPolicy.decide(.requestStalled, attempt()) == .answer(status: 504))
        #expect(RetryPolicy.decide(.invalidResponse("x"), attempt()) == .answer(status: 502))
    }
}

/// The splice contract: which response bodies may go socket to socket, and that bytes reported as
/// spliced count like relayed ones (framing, keep-alive, the next request).
@Suite struct SessionSpliceTests {
    @Test func aContentLengthBodyPassedOnAsReceivedIsSpliceableForWhatIsLeft() {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "a", count: 1000))
        #expect(h.machine.spliceableResponseBytes == 99_000)
        h.event(.upstreamBodySpliced(50_000))
        #expect(h.machine.spliceableResponseBytes == 49_000 && h.exchangesEnded.isEmpty)
        h.event(.upstreamBodySpliced(49_000))
        #expect(h.machine.spliceableResponseBytes == 0)
        #expect(h.exchangesEnded == [200] && h.did(.parkUpstream) && h.awaitingNextRequest)
        // The next request on the connection is handled as usual.
        h.client(get)
        h.server(ok)
        #expect(h.exchangesEnded == [200, 200])
    }

    @Test func moreThanTheBodyHoldsIsNotAccepted() {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        h.event(.upstreamBodySpliced(11))
        #expect(h.machine.spliceableResponseBytes == 10 && h.exchangesEnded.isEmpty)
    }

    @Test func chunkedCloseDelimitedAndRewrittenBodiesAreNotSpliceable() {
        var chunked = SessionHarness()
        chunked.client(get)
        chunked.server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        #expect(chunked.machine.spliceableResponseBytes == 0)

        var untilClose = SessionHarness()
        untilClose.client(get)
        untilClose.server("HTTP/1.1 200 OK\r\n\r\nsome")
        #expect(untilClose.machine.spliceableResponseBytes == 0)

        var rewritten = SessionHarness()
        rewritten.routings = [.forward(SessionHarness.server(0, rewrite: ["text/html"]))]
        rewritten.client(get)
        rewritten.server("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
        #expect(rewritten.machine.spliceableResponseBytes == 0)

        var head = SessionHarness()
        head.client("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        head.server("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        #expect(head.machine.spliceableResponseBytes == 0)
    }

    @Test func aServerThatEndsMidBodyAbortsTheSplicedResponse() {
        var h = SessionHarness()
        h.client(get)
        h.server("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        h.event(.upstreamBodySpliced(70_000))
        h.event(.upstreamEndOfStream)
        // The client has the head and part of the body: the connection is closed, not answered again.
        #expect(h.isClosed && h.did(.count(.abortedResponse)) && h.errorsSent.isEmpty)
        #expect(h.machine.spliceableResponseBytes == 0)
    }
}
