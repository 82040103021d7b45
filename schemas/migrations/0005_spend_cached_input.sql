-- 0005_spend_cached_input: input tokens the provider served from its prompt cache, per call
-- (OpenAI prompt_tokens_details.cached_tokens, Anthropic cache_read_input_tokens, Bedrock
-- cacheReadInputTokens, Gemini cachedContentTokenCount). Part of input_tokens, not added to it.
-- Portable SQL: ADD COLUMN with a constant default runs unchanged on SQLite and PostgreSQL.

ALTER TABLE spend ADD COLUMN cached_input_tokens BIGINT NOT NULL DEFAULT 0;
