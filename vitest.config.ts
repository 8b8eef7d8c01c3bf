import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // two cores: more workers only fight over them (and over sshd start-up)
    maxWorkers: 2,
    reporters: ['default'],
  },
})
