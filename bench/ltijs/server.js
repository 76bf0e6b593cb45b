// The peer in Gatehouse's benchmark: ltijs's Dynamic Registration with its Sequelize plugin on
// SQLite, set up as a tool equivalent to the one Gatehouse registers. One node process, as ltijs
// is normally deployed. Bound to loopback: ltijs's own deploy() would listen on every interface,
// so it runs "serverless" and this file serves its Express app.
'use strict'

const http = require('http')
const lti = require('ltijs').Provider
const Database = require('ltijs-sequelize')

const port = Number(process.env.PORT)
const url = `http://127.0.0.1:${port}`
const db = new Database('ltijs', 'ltijs', '', {
  dialect: 'sqlite',
  storage: process.env.LTIJS_DATABASE,
  logging: false
})

lti.setup(process.env.LTIJS_KEY, { plugin: db }, {
  appRoute: '/lti/launch',
  loginRoute: '/lti/login',
  keysetRoute: '/lti/keys',
  dynRegRoute: '/lti/register',
  dynReg: {
    url,
    name: 'Quiz Tool',
    description: 'Auto-graded quizzes.',
    autoActivate: true
  }
})

// Launches (the launch comparison of bench/run.py): ltijs verifies the launch, redirects to
// itself with its ltik, and calls this, which hands the browser to the trivial tool.
lti.onConnect((token, req, res) => res.redirect(process.env.TOOL_URL || '/'))

async function main () {
  await lti.deploy({ serverless: true, silent: true })
  const server = http.createServer(lti.app)
  server.listen(port, '127.0.0.1', () => console.log(`ltijs listening on ${url}`))
  process.on('SIGTERM', () => server.close(() => lti.close().then(() => process.exit(0))))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
