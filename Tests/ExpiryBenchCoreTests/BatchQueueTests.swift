import Testing
@testable import ExpiryBenchCore
@testable import ExpiryPipeline
@testable import RedisClient

@Suite("BatchQueue", .timeLimit(.minutes(1)))
struct BatchQueueTests {
    @Test func takeReturnsItemsInPushOrder() async {
        let queue = BatchQueue<Int>()
        queue.push([1, 2, 3])
        queue.push([4, 5])
        #expect(queue.count == 5)
        #expect(await queue.take(upTo: 100) == [1, 2, 3, 4, 5])
        #expect(queue.count == 0)
    }

    @Test func takeRespectsTheLimit() async {
        let queue = BatchQueue<String>()
        queue.push(["a", "b", "c", "d", "e"])
        #expect(await queue.take(upTo: 2) == ["a", "b"])
        #expect(queue.count == 3)
        #expect(await queue.take(upTo: 2) == ["c", "d"])
        #expect(await queue.take(upTo: 2) == ["e"])
        #expect(queue.count == 0)
    }

    @Test func pushingNothingChangesNothing() async {
        let queue = BatchQueue<Int>()
        queue.push([])
        #expect(queue.count == 0)
        queue.push([9])
        queue.push([])
        #expect(await queue.take(upTo: 10) == [9])
    }

    @Test func finishedEmptyQueueReturnsNil() async {
        let queue = BatchQueue<Int>()
        queue.finish()
        #expect(await queue.take(upTo: 10) == nil)
        #expect(await queue.take(upTo: 10) == nil)
    }

    @Test func finishDrainsWhatIsQueuedFirst() async {
        let queue = BatchQueue<Int>()
        queue.push([1, 2, 3])
        queue.finish()
        #expect(await queue.take(upTo: 2) == [1, 2])
        #expect(await queue.take(upTo: 2) == [3])
        #expect(await queue.take(upTo: 2) == nil)
    }

    @Test func waitingTakeIsWokenByPush() async {
        let queue = BatchQueue<Int>()
        let taker = Task { await queue.take(upTo: 10) }
        try? await Task.sleep(for: .milliseconds(50))   // let the taker start waiting
        queue.push([7, 8])
        #expect(await taker.value == [7, 8])
        #expect(queue.count == 0)
    }

    @Test func waitingTakeIsWokenByFinish() async {
        let queue = BatchQueue<Int>()
        let taker = Task { await queue.take(upTo: 10) }
        try? await Task.sleep(for: .milliseconds(50))
        queue.finish()
        #expect(await taker.value == nil)
    }

    @Test func waitingTakeRespectsTheLimit() async {
        let queue = BatchQueue<Int>()
        let taker = Task { await queue.take(upTo: 2) }
        try? await Task.sleep(for: .milliseconds(50))
        queue.push([1, 2, 3])
        #expect(await taker.value == [1, 2])
        #expect(queue.count == 1)
    }

    @Test func manyProducersOneConsumerLosesNothing() async {
        let queue = BatchQueue<Int>()
        let producers = 8
        let perProducer = 500
        let consumer = Task { () -> [Int] in
            var received: [Int] = []
            while let batch = await queue.take(upTo: 64) {
                #expect(batch.count <= 64)
                #expect(!batch.isEmpty)
                received += batch
            }
            return received
        }
        await withTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    for i in 0..<perProducer {
                        queue.push([producer * perProducer + i])
                        if i % 50 == 0 { await Task.yield() }
                    }
                }
            }
        }
        queue.finish()
        let received = await consumer.value
        #expect(received.count == producers * perProducer)
        #expect(Set(received) == Set(0..<producers * perProducer))
        // Each producer's items arrive in the order it pushed them.
        for producer in 0..<producers {
            let own = received.filter { $0 / perProducer == producer }
            #expect(own == own.sorted())
        }
    }

    @Test func repeatedWaitAndWake() async {
        let queue = BatchQueue<Int>()
        for round in 0..<20 {
            let taker = Task { await queue.take(upTo: 5) }
            if round % 2 == 0 { try? await Task.sleep(for: .milliseconds(2)) }
            queue.push([round])
            #expect(await taker.value == [round])
        }
    }
}
