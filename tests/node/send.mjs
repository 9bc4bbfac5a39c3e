// The tracking spec's Node SDK sending every call to a live Enclave.
// Usage: node send.mjs <https base url> <write key> <user id>
// The server's CA comes from NODE_EXTRA_CA_CERTS. Exits 1 if the SDK reports an error.
import { Analytics } from '@segment/analytics-node'

const [base, writeKey, userId] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host: base, path: '/api/ingest/v1/batch',
                                  flushAt: 50, maxRetries: 0 })
analytics.on('error', (err) => {
  console.error('sdk error:', err.code ?? '', err.reason?.message ?? err.message ?? err)
  process.exitCode = 1
})
analytics.identify({ userId, traits: { email: `${userId}@node.example`, firstName: 'Ada' } })
analytics.track({ userId, event: 'Signed up', properties: { trial_days: 14 } })
analytics.page({ userId, category: 'Docs', name: 'Pricing', properties: { path: '/pricing' } })
analytics.screen({ userId, name: 'Settings' })
analytics.group({ userId, groupId: 'acme', traits: { industry: 'rockets' } })
analytics.alias({ userId, previousId: 'old-visitor' })
await analytics.closeAndFlush({ timeout: 20000 })
